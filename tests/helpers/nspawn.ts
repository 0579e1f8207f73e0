/**
 * A real systemd to test the shipped unit under: a debootstrapped Debian 12
 * (bookworm) root, booted with
 * `systemd-nspawn --register=no --keep-unit --private-network
 * --system-call-filter=@pkey --boot`.
 *
 * - {@linkcode ensureRootfs} builds the root once (debootstrap `minbase` plus
 *   systemd, dbus, PostgreSQL, procps, sudo) and caches it outside the
 *   repository, in {@linkcode ROOTFS_DIR} (`/var/cache/kickmon-test/bookworm`,
 *   or `KICKMON_TEST_ROOTFS`), keyed by {@linkcode ROOTFS_RECIPE}: a changed
 *   recipe rebuilds it. The guest reaches Debian's mirror only here, while
 *   debootstrap builds the root; booted, it has no network but loopback.
 * - {@linkcode bootContainer} never writes to that cache: every boot gets an
 *   overlayfs (the cache as its lower layer, a fresh upper layer in
 *   `/var/tmp/kickmon-nspawn/<id>`), so a run starts from the same pristine
 *   root and a reboot inside one run keeps what that run installed.
 * - Commands run inside through `nsenter -t <container's PID 1> -a` with a
 *   clean environment (`systemd-run --machine` needs a registered machine).
 * - {@linkcode Container.stop} powers the container off (SIGTERM to nspawn
 *   is an orderly shutdown; SIGKILL to its PID 1 ends the whole PID
 *   namespace if that takes over 20 s), unmounts and removes the run
 *   directory. A run that died before doing so (SIGKILL) is cleaned up by the
 *   next {@linkcode bootContainer}: each run directory records the PID of the
 *   test process that owns it and of its nspawn, and only those PIDs are
 *   signalled.
 *
 * @example
 * ```ts
 * const { root } = await ensureRootfs({ rebuild: false, log: console.log });
 * const c = await bootContainer(root, { prepare: (dir) => Deno.writeTextFile(`${dir}/etc/motd`, "hi\n") });
 * try {
 *   console.log((await c.exec(["systemctl", "is-system-running"])).stdout);
 * } finally {
 *   await c.stop();
 * }
 * ```
 *
 * @module
 */

/** Where the debootstrapped root is cached (outside the repository). */
export const ROOTFS_DIR: string = Deno.env.get("KICKMON_TEST_ROOTFS") ??
  "/var/cache/kickmon-test/bookworm";

/** Where each boot's overlay layers and mount point live. */
export const RUN_BASE = "/var/tmp/kickmon-nspawn";

/** What the cached root is built from; any change rebuilds it. */
export const ROOTFS_RECIPE = {
  suite: "bookworm",
  mirror: "http://deb.debian.org/debian",
  variant: "minbase",
  include: ["systemd", "systemd-sysv", "dbus", "procps", "postgresql", "sudo"],
  hostname: "kickmon-test",
  version: 1,
} as const;

/** The `systemd-nspawn` options every boot uses (see the module doc). */
export const NSPAWN_OPTIONS: readonly string[] = [
  "--register=no",
  "--keep-unit",
  "--private-network",
  "--system-call-filter=@pkey",
  "--boot",
  "--console=passive",
];

const GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const dec = new TextDecoder();

/** Finds an executable on PATH (plus the sbin directories root's PATH has). */
export function which(name: string): string | null {
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":"),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
    "/usr/bin",
    "/bin",
  ];
  for (const d of dirs.filter(Boolean)) {
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && (st.mode ?? 0) & 0o111) return `${d}/${name}`;
    } catch {
      // not here
    }
  }
  return null;
}

function rootfsCached(): boolean {
  try {
    const stamp = Deno.readTextFileSync(`${ROOTFS_DIR}.recipe.json`);
    return stamp.trim() === JSON.stringify(ROOTFS_RECIPE) &&
      Deno.statSync(`${ROOTFS_DIR}/lib/systemd/systemd`).isFile;
  } catch {
    return false;
  }
}

/**
 * Why this machine cannot boot the test container at all, or `null` when it
 * can (root, systemd-nspawn, nsenter, overlayfs, and a cached root or
 * debootstrap to build one). Whether Debian's mirror answers is found out by
 * debootstrap itself.
 *
 * @example
 * ```ts
 * const why = nspawnUnavailable();
 * if (why) console.log(`skipped: ${why}`);
 * ```
 */
export function nspawnUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not root (systemd-nspawn and debootstrap need root)";
  if (!which("systemd-nspawn")) {
    return "systemd-nspawn is not installed (apt-get install systemd-container)";
  }
  if (!which("nsenter")) return "nsenter is not installed (apt-get install util-linux)";
  try {
    if (!/\toverlay$/m.test(Deno.readTextFileSync("/proc/filesystems"))) {
      return "the kernel has no overlayfs (modprobe overlay)";
    }
  } catch {
    return "cannot read /proc/filesystems";
  }
  if (!rootfsCached() && !which("debootstrap")) {
    return `no cached root in ${ROOTFS_DIR} and debootstrap is not installed ` +
      "(apt-get install debootstrap)";
  }
  return null;
}

/** Runs a host command to completion; throws with its output unless it succeeds. */
async function host(
  cmd: string,
  args: string[],
  opts: { what?: string; signal?: AbortSignal } = {},
) {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive" },
    signal: opts.signal,
  }).output();
  const text = (dec.decode(out.stdout) + dec.decode(out.stderr)).trim();
  if (!out.success) {
    const what = opts.what ?? `${cmd} ${args.join(" ")}`;
    throw new Error(`${what} failed (exit ${out.code}):\n${text.slice(-4000)}`);
  }
  return text;
}

/** Mount points at or below `path` (from /proc/self/mountinfo), deepest first. */
function mountsUnder(path: string): string[] {
  const unescape = (m: string) =>
    m.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m)
    .map(unescape)
    .filter((m) => m === path || m.startsWith(`${path}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * `rm -rf path`, but only once nothing is mounted below it: a chroot's /proc
 * or /dev left mounted by an interrupted debootstrap, or an overlay that did
 * not unmount, must never be deleted through. Unmounts (lazily) first and
 * refuses if a mount remains.
 */
async function removeTree(path: string): Promise<void> {
  for (const m of mountsUnder(path)) await host("umount", ["-l", m]).catch(() => {});
  const left = mountsUnder(path);
  if (left.length) throw new Error(`not removing ${path}: still mounted there: ${left.join(", ")}`);
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** What {@linkcode ensureRootfs} did. */
export interface RootfsResult {
  /** The root to boot (the cache directory). */
  readonly root: string;
  /** Whether this call built it (else it was cached). */
  readonly built: boolean;
  /** Seconds spent (building or checking). */
  readonly seconds: number;
}

/**
 * The cached root, built first when it is missing, was built from another
 * recipe, or `rebuild` is set (CI builds it once per run). Builds into
 * `<dir>.new` and renames, so an interrupted build never leaves a half root
 * behind; an exclusive lock on `<dir>.lock` keeps two runs from building at
 * once, and a shared one is held by every booted container (see
 * {@linkcode Container}), so a rebuild never pulls a root from under one.
 *
 * @throws when debootstrap fails (no mirror, no disk space): the test fails.
 */
export async function ensureRootfs(
  opts: { rebuild: boolean; log: (line: string) => void; signal?: AbortSignal },
): Promise<RootfsResult> {
  const t0 = performance.now();
  const parent = ROOTFS_DIR.slice(0, ROOTFS_DIR.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  const lock = await Deno.open(`${ROOTFS_DIR}.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    if (!opts.rebuild && rootfsCached()) {
      return { root: ROOTFS_DIR, built: false, seconds: (performance.now() - t0) / 1000 };
    }
    const r = ROOTFS_RECIPE;
    const tmp = `${ROOTFS_DIR}.new`;
    await removeTree(tmp);
    opts.log(
      `debootstrap ${r.suite} (${r.variant} + ${r.include.join(",")}) into ${tmp}` +
        (opts.rebuild ? " (CI: fresh root for this run)" : ""),
    );
    try {
      await host("debootstrap", [
        `--variant=${r.variant}`,
        `--include=${r.include.join(",")}`,
        r.suite,
        tmp,
        r.mirror,
      ], { signal: opts.signal });
    } catch (e) {
      await removeTree(tmp).catch(() => {});
      throw e;
    }
    // What a real installation has and minbase lacks: a name for the
    // machine and localhost in /etc/hosts (DATABASE_HOST=localhost).
    await Deno.writeTextFile(`${tmp}/etc/hostname`, `${r.hostname}\n`);
    await Deno.writeTextFile(
      `${tmp}/etc/hosts`,
      `127.0.0.1\tlocalhost\n127.0.1.1\t${r.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
    );
    // A fresh machine id at the first boot of each run, as on a new machine.
    await Deno.writeTextFile(`${tmp}/etc/machine-id`, "");
    await Deno.remove(`${tmp}/var/lib/dbus/machine-id`).catch(() => {});
    await Deno.remove(`${tmp}/var/cache/apt/archives`, { recursive: true }).catch(() => {});
    await Deno.mkdir(`${tmp}/var/cache/apt/archives/partial`, { recursive: true });
    await Deno.remove(`${ROOTFS_DIR}.recipe.json`).catch(() => {});
    await removeTree(ROOTFS_DIR);
    await Deno.rename(tmp, ROOTFS_DIR);
    await Deno.writeTextFile(`${ROOTFS_DIR}.recipe.json`, JSON.stringify(r) + "\n");
    const seconds = (performance.now() - t0) / 1000;
    opts.log(`root built in ${seconds.toFixed(1)} s`);
    return { root: ROOTFS_DIR, built: true, seconds };
  } finally {
    lock.close();
  }
}

/** Output of a command run in the container. */
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A booted container. */
export interface Container {
  /** The container's root as the host sees it (the overlay mount): write files here. */
  readonly dir: string;
  /** Host PID of the container's PID 1 (systemd); changes with a reboot. */
  readonly leader: number;
  /** Seconds from spawning nspawn until `systemctl is-system-running --wait` answered. */
  readonly bootSeconds: number;
  /** nspawn's own output (console), for diagnostics. */
  readonly console: string[];
  /**
   * Runs `cmd` inside (all the container's namespaces, its root, PATH,
   * HOME=/root, no other environment than `env`), with `stdin` if given.
   */
  exec(
    cmd: string[],
    opts?: { env?: Record<string, string>; stdin?: string; timeoutMs?: number },
  ): Promise<ExecResult>;
  /** `exec(["/bin/sh", "-c", script])`. */
  sh(script: string, opts?: { env?: Record<string, string>; stdin?: string }): Promise<ExecResult>;
  /** `systemctl reboot` inside, then waits until the new boot is up (see {@linkcode bootContainer}). */
  reboot(): Promise<number>;
  /** Powers off and removes everything this boot created. Idempotent (one shared promise); never throws. */
  stop(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** The container's PID 1: the child of nspawn that is PID 1 of its own PID namespace. */
function findLeader(nspawnPid: number): number | null {
  let tasks: string[] = [];
  try {
    tasks = [...Deno.readDirSync(`/proc/${nspawnPid}/task`)].map((e) => e.name);
  } catch {
    return null;
  }
  for (const t of tasks) {
    let children: string[] = [];
    try {
      children = Deno.readTextFileSync(`/proc/${nspawnPid}/task/${t}/children`).trim().split(
        /\s+/,
      ).filter(Boolean);
    } catch {
      continue;
    }
    for (const c of children) {
      try {
        const status = Deno.readTextFileSync(`/proc/${c}/status`);
        const ns = status.match(/^NSpid:\s+(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
        if (ns.length > 1 && ns.at(-1) === "1") return Number(c);
      } catch {
        // gone
      }
    }
  }
  return null;
}

/** A process's start time (field 22 of /proc/<pid>/stat): tells a reused PID apart. */
function startTime(pid: number): string {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kills what a dead earlier run left behind (by the PIDs it recorded) and removes it. */
async function reapStaleRuns(log: (l: string) => void): Promise<void> {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(RUN_BASE)];
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = `${RUN_BASE}/${e.name}`;
    const owner = Number(await Deno.readTextFile(`${dir}/owner.pid`).catch(() => "0"));
    if (owner > 0 && isAlive(owner) && /deno/.test(cmdline(owner))) continue;
    // nspawn may be gone while the container's PID 1 lives on (nspawn was
    // SIGKILLed): SIGKILL to a PID namespace's PID 1 ends all of it.
    const [leader, since] = (await Deno.readTextFile(`${dir}/leader.pid`).catch(() => ""))
      .trim().split(" ");
    if (Number(leader) > 1 && isAlive(Number(leader)) && startTime(Number(leader)) === since) {
      log(`stopping the container a dead run left behind (PID 1 = host pid ${leader}, ${dir})`);
      await host("kill", ["-KILL", leader]).catch(() => {});
      for (let i = 0; i < 50 && isAlive(Number(leader)); i++) await sleep(100);
    }
    const nspawn = Number(await Deno.readTextFile(`${dir}/nspawn.pid`).catch(() => "0"));
    if (nspawn > 0 && isAlive(nspawn) && cmdline(nspawn).includes(`${dir}/merged`)) {
      log(`stopping the systemd-nspawn a dead run left behind (pid ${nspawn}, ${dir})`);
      await host("kill", ["-KILL", String(nspawn)]).catch(() => {});
      for (let i = 0; i < 50 && isAlive(nspawn); i++) await sleep(100);
    }
    await host("umount", [`${dir}/merged`]).catch(() => {});
    await removeTree(dir).catch((err) => log(String(err)));
  }
}

/**
 * Boots `root` (read-only lower layer) in a new container.
 *
 * A reboot inside the container ends this nspawn with exit status 133 under
 * `--keep-unit` (nspawn asks its supervisor to start it again, as
 * `systemd-nspawn@.service` does with `RestartForceExitStatus=133`), or
 * restarts it in place; either way {@linkcode Container.reboot} returns once
 * the new boot's systemd reports `running`, and the overlay (the disk) is
 * kept.
 *
 * @param prepare writes files into the container's root before it boots.
 */
export async function bootContainer(
  root: string,
  opts: {
    prepare?: (dir: string) => Promise<void>;
    log?: (line: string) => void;
    bootTimeoutMs?: number;
    /** Aborting it powers the container off (also while it boots). */
    signal?: AbortSignal;
  } = {},
): Promise<Container> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const bootTimeoutMs = opts.bootTimeoutMs ?? 60_000;
  await Deno.mkdir(RUN_BASE, { recursive: true });
  await reapStaleRuns(log);
  const id = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const dir = `${RUN_BASE}/${id}`;
  const merged = `${dir}/merged`;
  for (const d of ["upper", "work", "merged"]) await Deno.mkdir(`${dir}/${d}`, { recursive: true });
  await Deno.writeTextFile(`${dir}/owner.pid`, `${Deno.pid}\n`);

  const lock = await Deno.open(`${root}.lock`, { create: true, write: true });
  await lock.lock(false);
  let mounted = false;
  let child: Deno.ChildProcess | null = null;
  let childStatus: Promise<Deno.CommandStatus> | null = null;
  let exited: Deno.CommandStatus | null = null;
  let leader = 0;
  let bootSeconds = 0;
  const consoleLines: string[] = [];
  let stopping: Promise<void> | undefined;

  const pump = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        consoleLines.push(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    }
    if (buf) consoleLines.push(buf);
  };

  const spawn = async () => {
    exited = null;
    child = new Deno.Command("systemd-nspawn", {
      args: [...NSPAWN_OPTIONS, `--machine=${ROOTFS_RECIPE.hostname}`, "-D", merged],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_COLORS: "0", LC_ALL: "C.UTF-8" },
    }).spawn();
    const c = child;
    await Deno.writeTextFile(`${dir}/nspawn.pid`, `${c.pid}\n`);
    const pumps = Promise.all([pump(c.stdout), pump(c.stderr)]);
    childStatus = pumps.then(() => c.status).then((s) => (exited = s));
  };

  const exec: Container["exec"] = async (cmd, o = {}) => {
    if (stopping || !leader || !isAlive(leader)) throw new Error("the container is not running");
    const env = Object.entries({
      PATH: GUEST_PATH,
      HOME: "/root",
      LANG: "C.UTF-8",
      TERM: "dumb",
      SYSTEMD_COLORS: "0",
      SYSTEMD_PAGER: "",
      ...o.env,
    }).map(([k, v]) => `${k}=${v}`);
    // In a session of its own: a guest command that signals its process group
    // (`kill -9 0`) must not reach this test process.
    const p = new Deno.Command("setsid", {
      args: [
        "--wait",
        "nsenter",
        "-t",
        String(leader),
        "-a",
        "--",
        "/usr/bin/env",
        "-i",
        ...env,
        ...cmd,
      ],
      stdin: o.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
    }).spawn();
    if (o.stdin !== undefined) {
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(o.stdin));
      await w.close();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeoutMs = o.timeoutMs ?? 120_000;
    const out = await Promise.race([
      p.output(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          try {
            p.kill("SIGKILL");
          } catch { /* gone */ }
          reject(new Error(`in the container, ${cmd.join(" ")} took over ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };

  /** Waits for a leader other than `previous`, then for its systemd to be up. */
  const waitBooted = async (t0: number, previous: number) => {
    const deadline = t0 + bootTimeoutMs;
    for (;;) {
      if (stopping) throw new Error("the container was stopped while booting");
      if (performance.now() > deadline) {
        throw new Error(
          `the container did not boot within ${bootTimeoutMs} ms; console:\n` +
            consoleLines.slice(-30).join("\n"),
        );
      }
      if (exited) {
        const code = (exited as Deno.CommandStatus).code;
        if (code === 133) {
          log("systemd-nspawn exited with 133 (the container rebooted): starting it again");
          await spawn(); // reboot under --keep-unit: we are the supervisor
        } else {
          throw new Error(
            `systemd-nspawn exited with ${code} while booting; console:\n` +
              consoleLines.slice(-30).join("\n"),
          );
        }
      }
      const l = child ? findLeader((child as Deno.ChildProcess).pid) : null;
      if (l && l !== previous) {
        leader = l;
        await Deno.writeTextFile(`${dir}/leader.pid`, `${l} ${startTime(l)}\n`);
        break;
      }
      await sleep(50);
    }
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the container's systemd did not come up in time`);
      const r = await exec(["systemctl", "is-system-running", "--wait"], {
        timeoutMs: Math.max(1000, left),
      }).catch((e) => ({ code: -1, stdout: "", stderr: String(e) }));
      const state = r.stdout.trim();
      if (state === "running") break;
      if (state === "degraded") {
        const failed = await exec(["systemctl", "--failed", "--no-pager"]);
        throw new Error(`the container booted degraded:\n${failed.stdout}`);
      }
      // "Failed to connect to bus" while systemd is still starting: retry.
      await sleep(100);
    }
    bootSeconds = (performance.now() - t0) / 1000;
  };

  const self: Container = {
    dir: merged,
    get leader() {
      return leader;
    },
    get bootSeconds() {
      return bootSeconds;
    },
    console: consoleLines,
    exec,
    sh: (script, o) => exec(["/bin/sh", "-c", script], o),
    reboot: async () => {
      const before = leader;
      const t0 = performance.now();
      // The reboot may take this very nsenter process with it.
      await exec(["systemctl", "reboot"], { timeoutMs: 30_000 }).catch(() => {});
      await waitBooted(t0, before);
      return bootSeconds;
    },
    stop: () => (stopping ??= (async () => {
      const c = child as Deno.ChildProcess | null;
      if (c && !exited) {
        try {
          c.kill("SIGTERM"); // nspawn --boot: an orderly poweroff
        } catch { /* gone */ }
        const deadline = performance.now() + 20_000;
        while (!exited && performance.now() < deadline) await sleep(100);
        if (!exited) {
          log("the container did not power off within 20 s: killing it");
          const l = findLeader(c.pid);
          if (l) await host("kill", ["-KILL", String(l)]).catch(() => {});
          try {
            c.kill("SIGKILL");
          } catch { /* gone */ }
        }
      }
      await childStatus?.catch(() => {});
      if (mounted) await host("umount", [merged]).catch(() => {});
      await removeTree(dir).catch((err) => log(String(err)));
      lock.close();
    })()),
  };

  opts.signal?.addEventListener("abort", () => void self.stop(), { once: true });
  try {
    opts.signal?.throwIfAborted();
    await host("mount", [
      "-t",
      "overlay",
      "overlay",
      "-o",
      `lowerdir=${root},upperdir=${dir}/upper,workdir=${dir}/work`,
      merged,
    ]);
    mounted = true;
    if (opts.prepare) await opts.prepare(merged);
    const t0 = performance.now();
    await spawn();
    await waitBooted(t0, 0);
    return self;
  } catch (e) {
    await self.stop();
    throw e;
  }
}
