/**
 * A mount of kind `local`: a folder of this machine. Keys are file paths under it.
 *
 * - No key leaves the folder: keys are checked when parsed (core/data-path.ts), and a
 *   symbolic link anywhere between the folder and the file is refused (DATA_PATH_ESCAPE),
 *   whether it points inside or out, so that no link planted later can redirect a write.
 *   The folder itself may be a link: it is resolved once, when the mount opens.
 * - A write is atomic: the bytes go to a hidden file beside the target
 *   (`.<name>.<random>.baton-part`), which is flushed to disk and renamed over the target,
 *   and the folder is flushed so that the rename survives a power loss. A killed writer
 *   leaves at most that hidden file, which listings skip.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { BatonError } from '../core/errors.js';
import { splitKey } from '../core/data-path.js';
import type {
  DataMount,
  ListOptions,
  LocalMountConfig,
  MountContext,
  ObjectInfo,
  WriteBody,
  WriteOptions,
  WriteResult,
} from './mount.js';
import { BodyDigest, chunksOf } from './write-body.js';

/** The suffix of files being written; listings skip them. */
const PART_SUFFIX = '.baton-part';

/** Most entries a listing returns when the caller gives no limit. */
const LIST_DEFAULT_LIMIT = 10_000;

/** Opens a local mount; the folder is created if it does not exist. */
export async function openLocalMount(
  name: string,
  config: LocalMountConfig,
  context: MountContext,
): Promise<DataMount> {
  const folder = resolve(context.root, config.path);
  try {
    await mkdir(folder, { recursive: true });
    return new LocalMount(name, await realpath(folder));
  } catch (error) {
    throw ioError(name, '', `opening the folder ${folder}`, error);
  }
}

class LocalMount implements DataMount {
  readonly kind = 'local';
  readonly writable = true;
  readonly remote = false;

  constructor(
    readonly name: string,
    private readonly root: string,
  ) {}

  async stat(key: string): Promise<ObjectInfo | null> {
    const file = await this.resolveExisting(key);
    if (file === null) return null;
    const info = await this.lstatOrNull(file, key);
    if (!info) return null;
    if (info.isDirectory()) return { key, size: 0, folder: true, modifiedAt: Math.floor(info.mtimeMs) };
    return infoOf(key, info);
  }

  async list(folder: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    const limit = options.limit ?? LIST_DEFAULT_LIMIT;
    const dir = await this.resolveExisting(folder);
    if (dir === null) return [];
    const out: ObjectInfo[] = [];
    await this.walk(dir, folder, options.recursive === true, limit, out);
    return out;
  }

  async read(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    const file = await this.resolveExisting(key);
    const info = file === null ? null : await this.lstatOrNull(file, key);
    if (!file || !info || info.isDirectory()) throw notFound(this.name, key, info?.isDirectory() === true);
    // Opened before it is handed out, so that a missing file is an error of `read`, not of the stream.
    const handle = await open(file, 'r').catch((error: unknown) => {
      throw ioError(this.name, key, 'opening', error);
    });
    return {
      info: infoOf(key, info),
      body: handle.createReadStream({ highWaterMark: 1024 * 1024 }),
    };
  }

  async write(key: string, body: WriteBody, options: WriteOptions = {}): Promise<WriteResult> {
    if (key === '')
      throw new BatonError('DATA_PATH_INVALID', `data://${this.name}/: a write needs a key, not the mount's root`);
    const { folder, name } = splitKey(key);
    const dir = join(this.root, ...(folder === '' ? [] : folder.split('/')));
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw ioError(this.name, key, 'creating its folder', error);
    });
    // mkdir follows a link it finds on the way: the check comes after it.
    await this.checkNoLinks(folder, key);
    const target = join(dir, name);
    const existing = await this.lstatOrNull(target, key);
    if (existing?.isSymbolicLink()) throw linkRefused(this.name, key);
    if (existing?.isDirectory()) {
      throw new BatonError('DATA_UNSUPPORTED', `data://${this.name}/${key} is a folder; a write needs an object's key`);
    }
    const part = join(dir, `.${name}.${randomBytes(6).toString('hex')}${PART_SUFFIX}`);
    const digest = new BodyDigest();
    try {
      const handle = await open(part, 'wx').catch(async (error: unknown) => {
        // A removal that emptied the folder may have taken it since it was made: once more.
        if (codeOf(error) !== 'ENOENT') throw error;
        await mkdir(dir, { recursive: true });
        await this.checkNoLinks(folder, key);
        return open(part, 'wx');
      });
      try {
        for await (const chunk of chunksOf(body, digest)) {
          options.signal?.throwIfAborted();
          await handle.write(chunk);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(part, target);
      await syncFolder(dir);
    } catch (error) {
      await unlink(part).catch(() => undefined);
      if (error instanceof BatonError) throw error;
      throw ioError(this.name, key, 'writing', error);
    }
    const written = await stat(target);
    return {
      ...infoOf(key, written),
      sha256: digest.hex(),
      ...(options.contentType ? { contentType: options.contentType } : {}),
    };
  }

  async remove(key: string): Promise<boolean> {
    if (key === '')
      throw new BatonError('DATA_UNSUPPORTED', `data://${this.name}/: the mount's root cannot be removed`);
    const file = await this.resolveExisting(key);
    if (file === null) return false;
    const info = await this.lstatOrNull(file, key);
    if (!info) return false;
    if (info.isDirectory()) {
      throw new BatonError(
        'DATA_UNSUPPORTED',
        `data://${this.name}/${key} is a folder; remove the objects in it one by one`,
      );
    }
    try {
      await unlink(file);
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return false;
      throw ioError(this.name, key, 'removing', error);
    }
    await this.removeEmptyFolders(splitKey(key).folder);
    return true;
  }

  /** Folders exist only to hold objects: those a removal left empty go too, up to the root. */
  private async removeEmptyFolders(folder: string): Promise<void> {
    let current = folder;
    while (current !== '') {
      try {
        await rmdir(join(this.root, ...current.split('/')));
      } catch {
        // Not empty (or already gone, or taken by a writer meanwhile): the folders above stay too.
        return;
      }
      current = splitKey(current).folder;
    }
  }

  async close(): Promise<void> {}

  /**
   * The file a key names, once the folders on the way are known to be real folders (no
   * link); null when one of them does not exist. The last segment is checked by the caller
   * (lstat): it may be a file, a folder, or a link to refuse.
   */
  private async resolveExisting(key: string): Promise<string | null> {
    if (key === '') return this.root;
    const { folder } = splitKey(key);
    const ok = await this.checkNoLinks(folder, key, true);
    return ok ? join(this.root, ...key.split('/')) : null;
  }

  /**
   * Refuses a link among the folders of `folder` (relative to the root): the real path of
   * the folder must be the folder itself. False when the folder does not exist and
   * `missingOk`.
   */
  private async checkNoLinks(folder: string, key: string, missingOk = false): Promise<boolean> {
    if (folder === '') return true;
    const dir = join(this.root, ...folder.split('/'));
    let real: string;
    try {
      real = await realpath(dir);
    } catch (error) {
      if (missingOk && (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR')) return false;
      throw ioError(this.name, key, 'resolving its folder', error);
    }
    if (real !== dir) throw linkRefused(this.name, key);
    return true;
  }

  private async lstatOrNull(file: string, key: string): Promise<Stats | null> {
    try {
      const info = await lstat(file);
      if (info.isSymbolicLink()) throw linkRefused(this.name, key);
      return info;
    } catch (error) {
      if (error instanceof BatonError) throw error;
      if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return null;
      throw ioError(this.name, key, 'reading its attributes', error);
    }
  }

  private async walk(dir: string, prefix: string, recursive: boolean, limit: number, out: ObjectInfo[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return;
      if (codeOf(error) === 'ENOTDIR')
        throw new BatonError('DATA_UNSUPPORTED', `data://${this.name}/${prefix} is an object, not a folder`);
      throw ioError(this.name, prefix, 'listing', error);
    }
    // Byte order of the names, which is the key order of every mount.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (out.length >= limit) return;
      if (entry.isSymbolicLink() || (entry.name.startsWith('.') && entry.name.endsWith(PART_SUFFIX))) continue;
      const key = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      const path = dir + sep + entry.name;
      if (entry.isDirectory()) {
        if (recursive) await this.walk(path, key, true, limit, out);
        else out.push({ key, size: 0, folder: true });
      } else if (entry.isFile()) {
        const info = await lstat(path).catch(() => null);
        if (info) out.push(infoOf(key, info));
      }
    }
  }
}

function infoOf(key: string, info: Stats): ObjectInfo {
  const modifiedAt = Math.floor(info.mtimeMs);
  return { key, size: info.size, etag: `"${info.size}-${modifiedAt}"`, modifiedAt };
}

/** Flushes a folder, so that a rename in it is on disk. Some file systems refuse: that is no error. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // A folder that cannot be flushed (some network file systems): the rename is as durable as they make it.
  } finally {
    await handle.close();
  }
}

function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function notFound(mount: string, key: string, folder: boolean): BatonError {
  return new BatonError(
    'DATA_NOT_FOUND',
    folder ? `data://${mount}/${key} is a folder, not an object` : `data://${mount}/${key} does not exist`,
    folder ? { hint: `List it with \`baton data ls data://${mount}/${key}\`.` } : {},
  );
}

function linkRefused(mount: string, key: string): BatonError {
  return new BatonError(
    'DATA_PATH_ESCAPE',
    `data://${mount}/${key}: a symbolic link is on the way to the object; local mounts never follow links`,
    { hint: 'Replace the link by the folder or file itself, or mount the folder it points to under its own name.' },
  );
}

function ioError(mount: string, key: string, doing: string, error: unknown): BatonError {
  const code = codeOf(error);
  const why =
    code === 'ENOSPC'
      ? 'the disk is full'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : ((error as Error | undefined)?.message ?? String(error));
  return new BatonError('DATA_IO', `data://${mount}/${key}: ${doing} failed: ${why}`, {
    ...(code ? { details: { errno: code } } : {}),
    cause: error,
  });
}
