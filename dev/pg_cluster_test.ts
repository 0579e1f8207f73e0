import assert from "node:assert/strict";
import postgres from "postgres";
import {
  findPgBin,
  isPgServerInstalled,
  PgClusterError,
  startThrowawayCluster,
} from "./pg_cluster.ts";

const noServer = !isPgServerInstalled();

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function selectOne(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    return row.one;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

Deno.test("findPgBin: names a missing binary and how to install it", () => {
  assert.throws(() => findPgBin("no-such-pg-binary-xyz"), (err) => {
    assert(err instanceof PgClusterError);
    assert.match(err.message, /apt-get install -y postgresql/);
    return true;
  });
});

Deno.test({
  name: "findPgBin: finds initdb when the server is installed",
  ignore: noServer,
  fn() {
    const initdb = findPgBin("initdb");
    assert(initdb.endsWith("/initdb"), initdb);
  },
});

Deno.test({
  name: "startThrowawayCluster: select 1, pgStop/pgStart, stop removes everything",
  ignore: noServer,
  async fn() {
    const lines: string[] = [];
    const cluster = await startThrowawayCluster({ log: (l) => lines.push(l) });
    try {
      assert.equal(cluster.url, `postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
      assert(await exists(cluster.dataDir), "data dir exists while running");
      assert(lines.some((l) => l.includes("server up")), lines.join("\n"));
      assert.equal(await selectOne(cluster.url), 1);

      // Test settings: fsync off unless durable.
      const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
      const [s] = await sql<{ fsync: string; sc: string }[]>`
        select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc`;
      await sql.end();
      assert.deepEqual({ ...s }, { fsync: "off", sc: "off" });

      await cluster.pgStop();
      assert(await exists(cluster.dataDir), "pgStop keeps the data dir");
      await assert.rejects(() => selectOne(cluster.url));

      await cluster.pgStart();
      assert.equal(await selectOne(cluster.url), 1);
    } finally {
      await cluster.stop();
    }
    assert(!(await exists(cluster.baseDir)), "stop removes the temp dir");
    await cluster.stop(); // idempotent
  },
});

Deno.test({
  name: "startThrowawayCluster: durable mode and extra settings",
  ignore: noServer,
  async fn() {
    await using cluster = await startThrowawayCluster({
      durable: true,
      settings: { work_mem: "8MB" },
    });
    const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
    try {
      const [s] = await sql<{ fsync: string; sc: string; wm: string }[]>`
        select current_setting('fsync') as fsync,
               current_setting('synchronous_commit') as sc,
               current_setting('work_mem') as wm`;
      assert.equal(s.fsync, "on");
      assert.equal(s.sc, "on");
      assert.equal(s.wm, "8MB");
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "startThrowawayCluster: an explicit port that is taken fails with PgClusterError",
  ignore: noServer,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    try {
      await assert.rejects(
        () => startThrowawayCluster({ port, startTimeoutMs: 15_000 }),
        (err) => {
          assert(err instanceof PgClusterError);
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
          return true;
        },
      );
    } finally {
      listener.close();
    }
  },
});
