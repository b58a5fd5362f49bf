// Map-reduce in TypeScript: list ten documents, count their words in batches of four
// (at most two batches at once), then reduce the partial counts into one table.
// Run it from this folder: npx baton run word_counts
import { defineFlow } from 'baton-orchestrator';

const flow = defineFlow({
  name: 'word_counts',
  description: 'Count the words of a set of documents: a map over batches, then a reduce.',
  params: { top: { type: 'integer', default: 3, description: 'how many of the most frequent words to report' } },
});

// The list: its output is what the map runs over.
const documents = flow.task('documents', ({ log }) => {
  const texts = [
    'the quick brown fox',
    'jumps over the lazy dog',
    'the dog sleeps',
    'a fox is quick',
    'the end of the day',
    'a lazy afternoon',
    'the fox and the dog',
    'quick quick slow',
    'over and over',
    'the last one',
  ];
  log.info(`${texts.length} documents to count`);
  return texts.map((text, i) => ({ id: `doc-${i + 1}`, text }));
});

// The map: one instance per batch of four documents, so `item` is an array of them; at
// most two instances run at once. Its output is the list of the instances' outputs, in
// the order of the batches.
const counts = flow.map('count_words', { over: documents, batch: 4, maxParallel: 2 }, ({ item, mapIndex, log }) => {
  const words: Record<string, number> = {};
  for (const doc of item) {
    for (const word of doc.text.split(' ')) words[word] = (words[word] ?? 0) + 1;
  }
  log.info(`batch ${mapIndex}: ${item.length} documents, ${Object.keys(words).length} distinct words`);
  return { batch: mapIndex, documents: item.map((doc) => doc.id), words };
});

// The reduce: reads the map's whole output, typed from what the map function returns.
flow.task('reduce', { inputs: { counts } }, ({ inputs, params }) => {
  const total: Record<string, number> = {};
  for (const part of inputs.counts) {
    for (const [word, n] of Object.entries(part.words)) total[word] = (total[word] ?? 0) + n;
  }
  const top = Object.entries(total)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .slice(0, params.top);
  return {
    batches: inputs.counts.length,
    documents: inputs.counts.reduce((sum, part) => sum + part.documents.length, 0),
    distinct_words: Object.keys(total).length,
    top: Object.fromEntries(top),
  };
});

export default flow;
