/**
 * The structure of a flow, checked and normalized one way for both front ends. A front
 * end describes each task as a `DraftTask`: names as written (with where each was
 * written), and the fields it normalizes itself (kind, retry, timeout, config, …).
 * `resolveFlow` does the rest, at the top level and inside every map template:
 *
 * - ids: valid, unique, failure handlers placed after their task (`<task>.on_failure`);
 * - groups: declared or implied by `group:`, expanded to their tasks in `depends_on` and
 *   in a choice's branches;
 * - dependencies a construct implies: a choice's branches wait for the choice, a race
 *   waits for its branches;
 * - the graph (unknown names, self-dependencies, cycles), choice, race, quorum, handler
 *   and finally rules, what `${{ }}` expressions read, and that none is written where a
 *   shell parses it (shell-scripts.ts);
 * - keys of template tasks (`<map>/<local id>`), under which code is looked up.
 *
 * Problems carry the key path of what was written, so that the YAML loader can point at a
 * line and column and the builder can name the option.
 */
import { analyzeGraph, rememberGraph, type FlowGraph } from '../core/graph.js';
import type { TaskSpec } from '../core/model.js';
import type { TriggerRule } from '../core/states.js';
import {
  structuralBody,
  type AddProblem,
  type DraftCatch,
  type DraftChoice,
  type DraftRace,
  type DraftTask,
  type FlowDraft,
  type NameRef,
  type ResolvedFlow,
  type StructureProblem,
  type TaskBody,
} from './flow-draft.js';
import { hasTemplate } from './expression.js';
import { checkName } from './flow-schema-parts.js';
import type { KeyPath } from './flow-schema.js';
import {
  checkReferences,
  taskNames,
  type ReadScope,
  type ReferenceProblem,
  type TaskNames,
  type TaskSet,
  type TemplatedValue,
} from './reference-check.js';
import { checkShellScripts } from './shell-scripts.js';
import { checkFinally, checkHandler } from './structure-rules.js';
import { Suggester, listNames, suggest } from './suggest.js';
import { isSingleExpression } from './task-schema.js';
import { createUpstreamIndex, type UpstreamIndex } from './upstream-index.js';

interface Group {
  readonly path: KeyPath;
  readonly declared: boolean;
  readonly description?: string;
  readonly members: string[];
}

interface Shared {
  readonly add: AddProblem;
  readonly groups: ReadonlyMap<string, Group>;
  readonly params: readonly string[];
  readonly word: string;
}

interface LevelScope {
  readonly depth: number;
  /** Key of the map whose template this is (`a` or `a/b`); null at the top level. */
  readonly keyPrefix: string | null;
  /** Local id of that map, for messages. */
  readonly mapId: string | null;
  readonly top: ReadScope['top'] | null;
}

/** A task of a level, and what it depends on; also the node the graph check reads. */
interface Entry {
  readonly id: string;
  readonly draft: DraftTask;
  /** Set on a failure handler: the task it handles. */
  readonly handles: string | undefined;
  readonly catchOf: DraftCatch | undefined;
  /** Its dependencies, with where each was written (resolveDependsOn, then races and choices). */
  deps: Dep[];
  /** Set instead of `deps` while they are the draft's plain names, as written (see depList). */
  names: readonly string[] | undefined;
  /** The ids of `deps`, once every dependency is known (the graph check and the spec share them). */
  dependsOn: readonly string[];
}

function newEntry(draft: DraftTask, handles?: string, catchOf?: DraftCatch): Entry {
  return { id: draft.id, draft, handles, catchOf, deps: NO_DEPS, names: undefined, dependsOn: NO_IDS };
}

/**
 * A dependency: the task id, and where it was written. The shape of a `NameRef`, so that a
 * name written as a task id (the common case, 300,000 times in a large flow) is its own
 * dependency, with no object made for it.
 */
type Dep = NameRef;

/** Checks the whole structure and, when nothing is wrong, normalizes it. */
export function resolveFlow(draft: FlowDraft): ResolvedFlow {
  const problems: StructureProblem[] = [];
  const add: AddProblem = (code, path, message, hint, at = 'value') => problems.push({ code, path, message, hint, at });
  const groups = collectGroups(draft, add);
  const shared: Shared = { add, groups, params: draft.params, word: draft.dependsOnWord };
  const top = new Level(draft.tasks, { depth: 0, keyPrefix: null, mapId: null, top: null }, shared);
  top.check();
  if (problems.length > 0) return { problems };
  const tasks = top.build();
  if (!tasks) return { problems };
  const named = [...groups].map(([name, g]) => [
    name,
    g.description === undefined ? {} : { description: g.description },
  ]);
  return { tasks, ...(named.length > 0 ? { groups: Object.fromEntries(named) } : {}), problems };
}

function collectGroups(draft: FlowDraft, add: AddProblem): Map<string, Group> {
  const groups = new Map<string, Group>();
  // Most flows have no groups: spare them a pass that indexes every task id.
  if (draft.groups.length === 0 && !draft.tasks.some((t) => t.group)) return groups;
  for (const g of draft.groups) {
    const bad = checkName(g.name);
    if (bad) add('DEF_INVALID', g.path, `group name ${bad}`, 'Rename the group.', 'key');
    groups.set(g.name, {
      path: g.path,
      declared: true,
      members: [],
      ...(g.description !== undefined ? { description: g.description } : {}),
    });
  }
  const ids = new Set<string>();
  for (const task of draft.tasks) {
    const first = !ids.has(task.id);
    ids.add(task.id);
    if (task.onFailure) ids.add(task.onFailure.handler.id);
    const ref = task.group;
    if (!ref) continue;
    const bad = checkName(ref.name);
    if (bad) {
      add('DEF_INVALID', ref.path, `group name ${bad}`, 'Rename the group.');
      continue;
    }
    let group = groups.get(ref.name);
    if (!group) {
      group = { path: ref.path, declared: false, members: [] };
      groups.set(ref.name, group);
    }
    // A finally task runs after every other, so a group in depends_on stands for its other tasks.
    if (first && !task.finally) group.members.push(task.id);
  }
  for (const [name, group] of groups) {
    if (!ids.has(name)) continue;
    add(
      'DEF_INVALID',
      group.path,
      `group ${name} has the same name as a task`,
      `Rename the group or the task: a name in depends_on must mean one of them.`,
      group.declared ? 'key' : 'value',
    );
  }
  return groups;
}

/**
 * The entries of a level by id, held as their positions in the level's list: the graph
 * check then takes this very map as its index of the ids, rather than build another one.
 */
class EntryIndex {
  readonly positions = new Map<string, number>();

  constructor(private readonly entries: Entry[]) {}

  has(id: string): boolean {
    return this.positions.has(id);
  }

  get(id: string): Entry | undefined {
    const at = this.positions.get(id);
    return at === undefined ? undefined : this.entries[at];
  }

  keys(): IterableIterator<string> {
    return this.positions.keys();
  }

  /** Appends an entry whose id is not in the index yet. */
  add(entry: Entry): void {
    this.positions.set(entry.id, this.entries.length);
    this.entries.push(entry);
  }
}

/** The tasks of one level (the flow, or one map template) and what they imply. */
class Level {
  private readonly entries: Entry[] = [];
  private readonly byId = new EntryIndex(this.entries);
  private readonly inner = new Map<string, Level>();
  /** Resolved choice targets and race branches, by task id. */
  private readonly targets = new Map<string, Dep[]>();
  private readonly branches = new Map<string, string[]>();
  private readonly priority = new Map<string, string[]>();
  /** Which tasks are upstream of which, over the dependencies known when it was made. */
  private upstreamIndex: UpstreamIndex | undefined;
  private idList: string[] | undefined;
  /** The ids of this level, once every task has entered it. */
  private localIds: Set<string> | undefined;
  /** The level's graph, built by the graph check when it found nothing wrong. */
  private graph: FlowGraph | undefined;
  /** For messages about unknown names: built once per level, on the first such message. */
  private similar: Suggester | undefined;
  private expressionNames: TaskNames | undefined;
  /** The same, for the body of a plain map (which sees the tasks of the top level). */
  private bodyNames: TaskNames | undefined;

  constructor(
    drafts: readonly DraftTask[],
    private readonly scope: LevelScope,
    private readonly shared: Shared,
  ) {
    for (let i = 0; i < drafts.length; i++) this.enter(drafts[i] as DraftTask);
  }

  private get add(): AddProblem {
    return this.shared.add;
  }

  private enter(draft: DraftTask): void {
    const bad = checkName(draft.id);
    if (bad) this.add('DEF_INVALID', draft.path, `task id ${bad}`, 'Rename the task.', 'key');
    if (this.byId.has(draft.id)) {
      this.add(
        'DEF_DUPLICATE_TASK',
        draft.path,
        `duplicate task id "${draft.id}"`,
        'Give each task its own id; this one repeats an earlier task.',
        'key',
      );
      return;
    }
    this.byId.add(newEntry(draft));
    const c = draft.onFailure;
    if (!c) return;
    const id = c.handler.id;
    const idPath = c.idGiven ? c.path.concat('id') : c.path;
    const badId = c.idGiven ? checkName(id) : undefined;
    if (badId) this.add('DEF_INVALID', idPath, `handler id ${badId}`, 'Rename the handler.');
    if (this.byId.has(id)) {
      this.add(
        'DEF_DUPLICATE_TASK',
        idPath,
        `the on_failure handler of ${draft.id} is named "${id}", which is already a task id`,
        c.idGiven ? 'Give the handler an id of its own.' : `Give the handler another id with \`id:\`.`,
        c.idGiven ? 'value' : 'key',
      );
      return;
    }
    this.byId.add(newEntry(c.handler, draft.id, c));
  }

  /** The ids of the level's tasks (handlers aside), in order; complete once the constructor ran. */
  private get ids(): string[] {
    return (this.idList ??= this.entries.filter((e) => e.handles === undefined).map((e) => e.draft.id));
  }

  /** The task ids a written name stands for: a task, or (at the top level) a group's tasks. */
  private lookup(name: string): { ids: readonly string[]; group?: string } | undefined {
    if (this.byId.has(name)) return { ids: [name] };
    const group = this.scope.depth === 0 ? this.shared.groups.get(name) : undefined;
    return group ? { ids: group.members, group: name } : undefined;
  }

  private names(): string[] {
    return [...this.ids, ...(this.scope.depth === 0 ? [...this.shared.groups.keys()] : [])];
  }

  /** The closest task (or group) name to a misspelt one. */
  private similarName(name: string): string | undefined {
    return (this.similar ??= new Suggester(this.names())).suggest(name);
  }

  /** The task ids of the level for a hint, at most a few of them. */
  private idListing(): string {
    return listNames(this.ids);
  }

  check(): void {
    // Indexed loops over the entries: this runs once per level, before the optimizing
    // compiler steps in, and each step of a for-of would allocate an iterator result, a
    // hundred thousand per loop in a large flow.
    const entries = this.entries;
    const n = entries.length;
    for (let i = 0; i < n; i++) this.resolveDependsOn(entries[i] as Entry);
    for (let i = 0; i < n; i++) {
      const d = (entries[i] as Entry).draft;
      if (d.race) this.resolveRace(d, d.race);
    }
    for (let i = 0; i < n; i++) {
      const d = (entries[i] as Entry).draft;
      if (d.choice) this.resolveChoice(d, d.choice);
    }
    // Choice branches wait for their choice unless that would close a cycle (reported above).
    this.upstreamIndex = undefined;
    for (let i = 0; i < n; i++) {
      const e = entries[i] as Entry;
      const c = e.draft.choice;
      if (!c) continue;
      for (const target of this.targets.get(e.draft.id) ?? []) {
        pushDep(this.depsOf(target.name), { name: e.draft.id, path: target.path });
      }
    }
    this.upstreamIndex = undefined;
    for (let i = 0; i < n; i++) {
      const e = entries[i] as Entry;
      e.dependsOn = e.names ?? (e.deps.length === 0 ? NO_IDS : e.deps.map((d) => d.name));
    }
    this.checkGraph();
    for (let i = 0; i < n; i++) this.checkRules(entries[i] as Entry);
    for (let i = 0; i < n; i++) this.checkMap((entries[i] as Entry).draft);
    for (let i = 0; i < n; i++) this.checkExpressions(entries[i] as Entry);
    for (let i = 0; i < n; i++) {
      const scripts = (entries[i] as Entry).draft.shellScripts;
      if (scripts) for (const p of checkShellScripts(scripts)) this.add(p.code, p.path, p.message, p.hint, p.at);
    }
  }

  private resolveDependsOn(e: Entry): void {
    const d = e.draft;
    // Handlers and finally tasks start on their own; their depends_on is reported in checkRules.
    if (e.handles !== undefined || d.finally) return;
    const names = d.dependsOnNames;
    if (names !== undefined && names.length < 16 && this.allPlainNames(d.id, names)) {
      e.names = names;
      return;
    }
    const refs = d.dependsOn;
    if (refs.length === 0) return;
    // Nearly always every name is a distinct task of this level: the list as written is
    // then the dependencies (depsOf copies it before anything is added).
    if (refs.length < 16 && this.allPlain(d.id, refs)) {
      e.deps = refs as Dep[];
      return;
    }
    const list: Dep[] = [];
    e.deps = list;
    for (const ref of refs) {
      // The common case, a task of this level, without the lookup's allocations.
      const task = this.byId.get(ref.name);
      if (task && task.handles === undefined && !task.draft.finally && ref.name !== d.id) {
        pushDep(list, ref);
        continue;
      }
      const found = this.lookup(ref.name);
      if (!found) {
        this.unknownDependency(d, ref);
        continue;
      }
      if (found.group !== undefined && found.ids.length === 0) {
        this.add(
          'DEF_INVALID',
          ref.path,
          `group ${ref.name} has no tasks`,
          `Add \`group: ${ref.name}\` to the tasks that belong to it, or remove it from ${this.shared.word}.`,
        );
        continue;
      }
      for (const id of found.ids) {
        if (found.group !== undefined && id === d.id) {
          this.add(
            'DEF_CYCLE',
            ref.path,
            `task ${d.id} depends on group ${ref.name}, which contains ${d.id} itself`,
            `List the other tasks of ${ref.name} instead, or move ${d.id} out of the group.`,
          );
          continue;
        }
        if (this.byId.get(id)?.draft.finally) {
          this.add(
            'DEF_INVALID',
            ref.path,
            `task ${d.id} depends on ${id}, a finally task; finally tasks run after every other task, so nothing can wait for them`,
            `Remove ${id} from the ${this.shared.word} of ${d.id}.`,
          );
          continue;
        }
        pushDep(list, id === ref.name ? ref : { name: id, path: ref.path });
      }
    }
  }

  private unknownDependency(d: DraftTask, ref: NameRef): void {
    const guess = this.similarName(ref.name);
    const dym = guess ? ` (did you mean "${guess}"?)` : '';
    if (this.scope.depth === 0) {
      const what = this.shared.groups.size > 0 ? 'a task or group' : 'a task';
      this.add(
        'DEF_UNKNOWN_DEPENDENCY',
        ref.path,
        `task ${d.id} depends on "${ref.name}", which is not ${what} of this flow${dym}`,
        guess ? `Change it to "${guess}".` : `Use one of the task ids: ${this.idListing()}.`,
      );
      return;
    }
    const outer = this.scope.top?.ids.has(ref.name) || this.shared.groups.has(ref.name);
    this.add(
      'DEF_UNKNOWN_DEPENDENCY',
      ref.path,
      `task ${d.id} depends on "${ref.name}", which is not a task of map ${this.scope.mapId as string}${dym}`,
      outer
        ? `Tasks inside a map depend only on tasks of the same map; to wait for ${ref.name}, add it to the ${this.shared.word} of the map.`
        : guess
          ? `Change it to "${guess}".`
          : `Use one of the tasks of map ${this.scope.mapId as string}: ${this.idListing()}.`,
    );
  }

  /** Resolves names of branches (choice targets, race branches): tasks of this level that may be selected. */
  private branchTargets(owner: DraftTask, what: 'choice' | 'race', refs: readonly NameRef[], groups: boolean): Dep[] {
    const out: Dep[] = [];
    const taken = new Set<string>();
    for (const ref of refs) {
      const found = this.lookup(ref.name);
      if (!found) {
        const guess = this.similarName(ref.name);
        this.add(
          'DEF_UNKNOWN_DEPENDENCY',
          ref.path,
          `${what} ${owner.id} names "${ref.name}" as a branch, but there is no such task${guess ? ` (did you mean "${guess}"?)` : ''}`,
          guess ? `Change it to "${guess}".` : `Use one of the task ids: ${this.idListing()}.`,
        );
        continue;
      }
      if (found.group !== undefined && !groups) {
        this.add(
          'DEF_INVALID',
          ref.path,
          `${what} ${owner.id} names group ${ref.name}; its branches are tasks`,
          `List the tasks of ${ref.name} instead: ${found.ids.join(', ') || '(it has none)'}.`,
        );
        continue;
      }
      for (const id of found.ids) {
        const target = this.byId.get(id) as Entry;
        const problem =
          id === owner.id
            ? `${what} ${owner.id} names itself as a branch`
            : target.handles !== undefined
              ? `${what} ${owner.id} names ${id}, an on_failure handler, as a branch`
              : target.draft.finally
                ? `${what} ${owner.id} names ${id}, a finally task, as a branch`
                : undefined;
        if (problem) {
          this.add('DEF_INVALID', ref.path, problem, 'Name other tasks of the flow as branches.');
          continue;
        }
        if (!taken.has(id)) out.push({ name: id, path: ref.path });
        taken.add(id);
      }
    }
    return out;
  }

  private resolveRace(d: DraftTask, race: DraftRace): void {
    const seen = new Set<string>();
    for (const ref of race.branches) {
      if (seen.has(ref.name))
        this.add('DEF_INVALID', ref.path, `race ${d.id} names ${ref.name} twice`, 'Name each branch once.');
      seen.add(ref.name);
    }
    if (seen.size < 2) {
      this.add(
        'DEF_INVALID',
        race.branchesPath,
        `race ${d.id} needs at least two branches, got ${seen.size}`,
        'List two or more tasks that compete for the same result.',
      );
    }
    // The race decides on its branches alone: a prerequisite among its upstream would count
    // as a competitor (and win). What the branches need goes on the branches.
    if (d.dependsOn.length > 0) {
      const names = d.dependsOn.map((r) => r.name).join(', ');
      this.add(
        'DEF_INVALID',
        d.dependsOnPath,
        `race ${d.id} waits only for its branches; it cannot also depend on ${names}`,
        `Put ${names} in the ${this.shared.word} of each branch instead.`,
      );
    }
    const branches = this.branchTargets(d, 'race', race.branches, false);
    this.branches.set(
      d.id,
      branches.map((b) => b.name),
    );
    const list = this.depsOf(d.id);
    for (const b of branches) pushDep(list, b);

    if (d.triggerRule) {
      this.add(
        'DEF_INVALID',
        d.triggerRule.path,
        `a race waits for its branches and picks the winner itself; it takes no trigger rule`,
        'Remove the trigger rule.',
      );
    }
    if (race.score && race.mode !== 'all') {
      this.add(
        'DEF_INVALID',
        race.path,
        `race ${d.id} has a score function, which needs mode all`,
        "Set mode: 'all' to wait for every branch and score each, or drop the function.",
      );
    }
    if (race.priority === null) return;
    if (race.mode !== 'all') {
      this.add(
        'DEF_INVALID',
        race.priorityPath,
        `priority applies only with mode all; in mode first the first success wins`,
        'Set mode: all, or remove priority.',
      );
      return;
    }
    if (race.score) {
      this.add(
        'DEF_INVALID',
        race.priorityPath,
        `race ${d.id} has both a priority and a score function; only one may choose the winner`,
        'Remove priority, or the score function.',
      );
    }
    const listed = new Set<string>();
    for (const ref of race.priority) {
      if (!seen.has(ref.name)) {
        const guess = suggest(ref.name, [...seen]);
        this.add(
          'DEF_INVALID',
          ref.path,
          `priority names ${ref.name}, which is not a branch of race ${d.id}${guess ? ` (did you mean "${guess}"?)` : ''}`,
          `List the branches only: ${[...seen].join(', ')}.`,
        );
      } else if (listed.has(ref.name)) {
        this.add('DEF_INVALID', ref.path, `priority lists ${ref.name} twice`, 'List each branch once.');
      }
      listed.add(ref.name);
    }
    const missing = [...seen].filter((b) => !listed.has(b));
    if (missing.length > 0) {
      this.add(
        'DEF_INVALID',
        race.priorityPath,
        `priority must list every branch of race ${d.id}, but does not list ${missing.join(', ')}`,
        `List each branch once, the preferred first: ${[...seen].join(', ')}.`,
      );
    }
    this.priority.set(
      d.id,
      race.priority.map((r) => r.name),
    );
  }

  private resolveChoice(d: DraftTask, choice: DraftChoice): void {
    const refs: NameRef[] = [];
    if (choice.branches) {
      if (choice.branches.length === 0) {
        this.add(
          'DEF_INVALID',
          choice.path,
          `choice ${d.id} names no branches`,
          'List the tasks its function may select in branches.',
        );
      }
      for (const ref of choice.branches) refs.push(ref);
    } else if (choice.rules.length === 0) {
      this.add(
        'DEF_INVALID',
        choice.rulesPath,
        `choice ${d.id} has no rules`,
        'Add rules: [{ when: "${{ … }}", then: [<task>] }], and otherwise: for when none matches.',
      );
    }
    for (const rule of choice.rules) {
      if (rule.then.length === 0) {
        this.add(
          'DEF_INVALID',
          rule.thenPath,
          'a rule must name at least one task in then',
          'List the tasks this rule selects, e.g. then: [big].',
        );
      }
      if (typeof rule.when.value === 'string' && !isSingleExpression(rule.when.value)) {
        this.add(
          'DEF_INVALID',
          rule.when.path,
          `must be one \${{ }} expression, got ${JSON.stringify(rule.when.value)}`,
          'Write the condition as one expression, e.g. "${{ tasks.list.output.length > 100 }}".',
        );
      }
      for (const ref of rule.then) refs.push(ref);
    }
    for (const ref of choice.otherwise) refs.push(ref);
    const targets = this.branchTargets(d, 'choice', refs, true);
    const kept = targets.filter((t) => {
      if (!this.isUpstream(d.id, t.name)) return true;
      this.add(
        'DEF_CYCLE',
        t.path,
        `choice ${d.id} cannot select ${t.name}: ${t.name} runs before ${d.id} (it is upstream)`,
        `Branches come after their choice; remove ${t.name} from the branches, or ${d.id} from its upstream.`,
      );
      return false;
    });
    this.targets.set(d.id, kept);
  }

  /** True when `target` is upstream of `id`, over the dependencies known so far. */
  private isUpstream(id: string, target: string): boolean {
    this.upstreamIndex ??= createUpstreamIndex({
      keys: () => this.byId.keys(),
      get: (id) => {
        const e = this.byId.get(id);
        return e && (e.names ?? e.deps);
      },
    });
    return this.upstreamIndex.isUpstream(id, target);
  }

  /** The tasks upstream of `id`, as a set the expression checks can ask. */
  private upstreamOf(id: string): TaskSet {
    return { has: (target) => this.isUpstream(id, target) };
  }

  /** What the tasks inside map `id` (a task of this level) see of this level, or of the top one. */
  private topFor(id: string): NonNullable<ReadScope['top']> {
    return this.scope.top ?? { ids: this.localIdSet(), readable: this.upstreamOf(id), anchor: id };
  }

  /** The ids of the level, tasks and handlers, as one set shared by every check. */
  private localIdSet(): Set<string> {
    return (this.localIds ??= new Set(this.byId.keys()));
  }

  /** The dependency list of a task of the level, made when the first one is added. */
  private depsOf(id: string): Dep[] {
    const e = this.byId.get(id) as Entry;
    this.depList(e);
    if (e.deps === NO_DEPS) e.deps = [];
    else if (e.deps === e.draft.dependsOn) e.deps = e.deps.slice();
    return e.deps;
  }

  /** The dependencies of a task with where each was written, made from its names if need be. */
  private depList(e: Entry): readonly Dep[] {
    if (e.names !== undefined) {
      // The names passed allPlainNames: they are the written list, one for one.
      e.deps = e.draft.dependsOn as Dep[];
      e.names = undefined;
    }
    return e.deps;
  }

  /** The check of allPlain, on names as written. */
  private allPlainNames(id: string, names: readonly string[]): boolean {
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const task = this.byId.get(name);
      if (!task || task.handles !== undefined || task.draft.finally || name === id) return false;
      for (let k = 0; k < i; k++) if (names[k] === name) return false;
    }
    return true;
  }

  /** Whether each name is a task of this level that may be depended on, other than `id`, and none repeats. */
  private allPlain(id: string, refs: readonly NameRef[]): boolean {
    for (let i = 0; i < refs.length; i++) {
      const name = (refs[i] as NameRef).name;
      const task = this.byId.get(name);
      if (!task || task.handles !== undefined || task.draft.finally || name === id) return false;
      for (let k = 0; k < i; k++) if ((refs[k] as NameRef).name === name) return false;
    }
    return true;
  }

  private checkGraph(): void {
    const word = this.shared.word;
    const { problems, graph } = analyzeGraph(this.entries, this.byId.positions);
    this.graph = graph;
    for (const problem of problems) {
      if (problem.kind === 'self_dependency') {
        const self = this.byId.get(problem.id);
        const origin = self && this.depList(self).find((d) => d.name === problem.id)?.path;
        this.add(
          'DEF_CYCLE',
          origin ?? (this.byId.get(problem.id) as Entry).draft.dependsOnPath,
          `task ${problem.id} depends on itself`,
          `Remove ${problem.id} from its own ${word}.`,
        );
      } else if (problem.kind === 'cycle') {
        const first = this.byId.get(problem.path[0] as string) as Entry;
        this.add(
          'DEF_CYCLE',
          first.draft.dependsOnPath,
          `cycle ${problem.path.join(' → ')}`,
          `Remove one of the ${word} edges of this cycle.`,
          'key',
        );
      }
      // Unknown names were reported when resolving them; duplicates when entering them.
    }
  }

  /** Quorum, finally, handler and group rules of one task. */
  private checkRules(e: Entry): void {
    const d = e.draft;
    const word = this.shared.word;
    const quorum = d.triggerRule?.quorum;
    if (quorum && !d.race && e.handles === undefined && !d.finally) {
      const n = (e.names ?? e.deps).length;
      if (!Number.isInteger(quorum.k) || quorum.k < 1 || quorum.k > n) {
        this.add(
          'DEF_INVALID',
          d.triggerRule.path,
          n === 0
            ? `k_of_n counts upstream successes, but ${d.id} has no upstream tasks`
            : `k_of_n must be a whole number from 1 to ${n} (the upstream tasks of ${d.id}), got ${quorum.k}`,
          n === 0 ? `Add upstream tasks to the ${word} of ${d.id}.` : `Set k_of_n to at most ${n}.`,
        );
      }
    }
    if (d.group && this.scope.depth > 0) {
      this.add(
        'DEF_INVALID',
        d.group.path,
        'groups are for the tasks of the flow; tasks inside a map belong to none',
        'Remove group here; group the map task instead.',
      );
    }
    if (d.finally) checkFinally(d, this.scope.depth, this.shared.word, this.add);
    if (e.handles !== undefined) checkHandler(d, e.handles, e.catchOf as DraftCatch, this.shared.word, this.add);
  }

  private checkMap(d: DraftTask): void {
    const map = d.map;
    if (!map) return;
    const over = map.over.value;
    if (typeof over === 'string' && !isSingleExpression(over)) {
      this.add(
        'DEF_INVALID',
        map.over.path,
        `must be one \${{ }} expression that yields a list, got ${JSON.stringify(over)}`,
        'Write e.g. "${{ tasks.list.output }}" or "${{ params.regions }}".',
      );
    }
    for (const [name, value] of [
      ['maxParallel', map.maxParallel],
      ['batch', map.batch],
    ] as const) {
      // The flow-file schema checks these already; this is for the builder's numbers.
      if (value !== null && (!Number.isInteger(value) || value < 1))
        this.add(
          'DEF_INVALID',
          map.path.concat(name),
          `must be a positive integer, got ${value}`,
          `Set ${name} to 1 or more.`,
        );
    }
    if (!map.tasks && (d.choice || d.race)) {
      const what = d.choice ? 'choice' : 'race';
      this.add(
        'DEF_INVALID',
        map.path,
        `a ${what} cannot be mapped: a map runs a task body once per item`,
        `Map over a group instead, with the ${what} among its tasks.`,
        'key',
      );
    }
    if (!map.tasks) return;
    if (map.tasks.length === 0) {
      this.add(
        'DEF_INVALID',
        map.tasksPath,
        'a map over a group needs at least one task',
        'List the tasks that run once per item under tasks.',
      );
    }
    const level = new Level(
      map.tasks,
      {
        depth: this.scope.depth + 1,
        keyPrefix: this.keyOf(d.id),
        mapId: d.id,
        top: this.topFor(d.id),
      },
      this.shared,
    );
    level.check();
    this.inner.set(d.id, level);
  }

  private keyOf(id: string): string {
    return this.scope.keyPrefix === null ? id : `${this.scope.keyPrefix}/${id}`;
  }

  private readScope(e: Entry): ReadScope {
    const d = e.draft;
    const local = this.localIdSet();
    const readable: TaskSet = e.handles
      ? this.upstreamOf(e.handles)
      : d.finally
        ? { has: (id) => local.has(id) && !this.byId.get(id)?.draft.finally }
        : this.upstreamOf(d.id);
    const top = this.scope.top;
    this.expressionNames ??= taskNames([...local, ...(top ? [...top.ids].filter((id) => !local.has(id)) : [])]);
    return {
      self: d.id,
      local,
      readable,
      ...(top ? { top } : {}),
      depth: this.scope.depth,
      ...(e.handles !== undefined ? { handles: e.handles } : {}),
      params: this.shared.params,
      dependsOnWord: this.shared.word,
      names: this.expressionNames,
    };
  }

  private checkExpressions(e: Entry): void {
    const d = e.draft;
    // Most tasks of a large flow template nothing: they need no scope at all.
    if (!d.map && !d.choice && !templatesAny(d.templated)) return;
    const scope = this.readScope(e);
    // Problems are appended one by one: a spread of 200,000 would overflow the stack.
    const found: ReferenceProblem[] = [];
    const collect = (values: readonly TemplatedValue[], within: ReadScope) => {
      for (const p of checkReferences(values, within)) found.push(p);
    };
    if (d.map) collect([d.map.over], scope);
    if (d.choice)
      collect(
        d.choice.rules.map((r) => r.when),
        scope,
      );
    if (d.map && !d.map.tasks) {
      // A plain map's body runs once per item: one level down, alone in its template.
      const top = this.topFor(d.id);
      const body: ReadScope = {
        ...scope,
        local: new Set([d.id]),
        readable: NOTHING,
        top,
        depth: this.scope.depth + 1,
        names: (this.bodyNames ??= taskNames([...top.ids])),
      };
      collect(d.templated, body);
    } else collect(d.templated, scope);
    for (const p of found) this.add(p.code, p.path, p.message, p.hint, p.at);
  }

  /** The normalized tasks of the level; undefined if a front end left a body out. */
  build(): TaskSpec[] | undefined {
    const out: TaskSpec[] = [];
    // The checked graph is the plan's when every spec kept its task's checked dependencies.
    let same = this.graph !== undefined;
    const entries = this.entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      const spec = this.buildTask(e);
      if (!spec) return undefined;
      if (spec.dependsOn !== e.dependsOn) same = false;
      out.push(spec);
    }
    if (same) rememberGraph(out, this.graph as FlowGraph);
    return out;
  }

  private buildTask(e: Entry): TaskSpec | undefined {
    const d = e.draft;
    const body = d.body;
    if (!body) return undefined;
    const key = this.scope.keyPrefix === null ? undefined : this.keyOf(d.id);
    const alone = e.handles !== undefined || d.finally !== undefined;
    const quorum = d.triggerRule?.quorum;
    const triggerRule: TriggerRule = d.race
      ? 'all_done'
      : alone
        ? 'all_success'
        : (d.triggerRule?.rule ?? 'all_success');
    const dependsOn = alone ? NO_IDS : e.dependsOn;
    // One object of a fixed shape, optional fields added only when present: flows of
    // 100,000 tasks are built here, and spreads of conditional literals cost a lot there.
    const spec: Mutable<TaskSpec> = d.map
      ? taskSpec(d.id, dependsOn, triggerRule, structuralBody('map'))
      : taskSpec(d.id, dependsOn, triggerRule, body);
    if (key !== undefined) spec.key = key;
    if (d.group && this.scope.depth === 0) spec.group = d.group.name;
    if (d.description !== undefined) spec.description = d.description;
    if (quorum && triggerRule === 'k_of_n') spec.quorum = { k: quorum.k, cancelRest: quorum.cancelRest };
    const c = d.onFailure;
    if (c) spec.onFailure = { handler: c.handler.id, recover: c.recover, on: c.on.map((r) => r.name) };
    if (e.handles !== undefined) spec.handles = e.handles;
    if (d.finally) spec.finally = true;
    if (d.map) {
      const template = d.map.tasks ? this.inner.get(d.id)?.build() : [templateOf(d.id, body, key ?? d.id)];
      if (!template) return undefined;
      spec.map = {
        over: d.map.over.value as string,
        maxParallel: d.map.maxParallel,
        batch: d.map.batch,
        onItemFailure: d.map.onItemFailure,
        group: d.map.tasks !== undefined,
        template,
      };
    } else if (d.choice) {
      const targets = this.targets.get(d.id) ?? [];
      const targetIds = new Set(targets.map((t) => t.name));
      const expand = (refs: readonly NameRef[]) =>
        unique(refs.flatMap((r) => this.lookup(r.name)?.ids ?? []).filter((id) => targetIds.has(id)));
      spec.choice = {
        rules: d.choice.rules.map((r) => ({ when: r.when.value as string, then: expand(r.then) })),
        otherwise: expand(d.choice.otherwise),
        mode: d.choice.mode,
        targets: targets.map((t) => t.name),
      };
    } else if (d.race) {
      spec.race = {
        branches: this.branches.get(d.id) ?? [],
        mode: d.race.mode,
        priority: this.priority.get(d.id) ?? null,
        score: d.race.score,
      };
    }
    return spec;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const NO_IDS: readonly string[] = Object.freeze([]);
/** The dependencies of a task that has none yet; replaced, never filled. */
const NO_DEPS = Object.freeze([]) as readonly Dep[] as Dep[];

/** The ids of the longer dependency lists, so that a task joining 50,000 others is built in linear time. */
const depIndex = new WeakMap<Dep[], Set<string>>();

/** Adds `dep` to `list` unless a dependency on the same task is there already. */
function pushDep(list: Dep[], dep: Dep): void {
  const n = list.length;
  // Short lists, nearly all of them, are scanned: no index to look up per dependency.
  if (n < 16) {
    for (let i = 0; i < n; i++) if ((list[i] as Dep).name === dep.name) return;
    list.push(dep);
    return;
  }
  let ids = depIndex.get(list);
  if (!ids) {
    ids = new Set(list.map((d) => d.name));
    depIndex.set(list, ids);
  }
  if (ids.has(dep.name)) return;
  list.push(dep);
  ids.add(dep.name);
}

/** Whether any of the values holds a `${{ }}` template; a loop, as it runs once per task. */
function templatesAny(values: readonly TemplatedValue[]): boolean {
  for (let i = 0; i < values.length; i++) if (hasTemplate((values[i] as TemplatedValue).value)) return true;
  return false;
}

/** The tasks the body of a plain map may read among its own: none, it is alone there. */
const NOTHING: TaskSet = { has: () => false };

/** A task spec with the fields every task has, in one order. */
function taskSpec(
  id: string,
  dependsOn: readonly string[],
  triggerRule: TriggerRule,
  body: TaskBody,
): Mutable<TaskSpec> {
  const spec: Mutable<TaskSpec> = {
    id,
    kind: body.kind,
    dependsOn,
    triggerRule,
    retry: body.retry,
    timeoutMs: body.timeoutMs,
    pool: body.pool,
    with: body.with,
    config: body.config,
  };
  if (body.labels?.length) spec.labels = body.labels;
  if (body.produces?.length) spec.produces = body.produces;
  if (body.consumes?.length) spec.consumes = body.consumes;
  if (body.cache !== undefined) spec.cache = body.cache;
  return spec;
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** The template of a plain map: the task's own body, alone, run once per item. */
function templateOf(id: string, body: TaskBody, key: string): TaskSpec {
  const spec = taskSpec(id, [], 'all_success', body);
  spec.key = key;
  return spec;
}
