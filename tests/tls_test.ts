/**
 * Issue 4: `DATABASE_SSLMODE` and `DATABASE_SSLROOTCERT` against a real
 * PostgreSQL server that accepts only TLS, with a test CA made by openssl.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { startThrowawayCluster, type ThrowawayCluster } from "../dev/pg_cluster.ts";
import { runKickmon } from "../dev/kickmon_process.ts";

/** Runs openssl; throws with its output when it fails. */
async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Makes a CA, and a server certificate it signs whose only name is `san`
 * (e.g. `DNS:localhost`). Also makes a second, unrelated CA.
 */
async function makeCerts(dir: string, san: string): Promise<void> {
  const ca = (name: string) =>
    openssl(
      dir,
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
    );
  await ca("test-ca");
  await ca("other-ca");
  await openssl(
    dir,
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=kickmon-test-db",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${san}\n`);
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "test-ca.pem",
    "-CAkey",
    "test-ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-out",
    "server.crt",
  );
}

/** Turns TLS on and refuses every unencrypted TCP connection. */
async function requireTls(cluster: ThrowawayCluster, certDir: string): Promise<void> {
  const owner = await Deno.stat(cluster.dataDir);
  for (const f of ["server.crt", "server.key"]) {
    const to = `${cluster.dataDir}/${f}`;
    await Deno.copyFile(`${certDir}/${f}`, to);
    await Deno.chmod(to, 0o600);
    if (owner.uid !== null && owner.gid !== null && Deno.uid() === 0) {
      await Deno.chown(to, owner.uid, owner.gid);
    }
  }
  await Deno.writeTextFile(
    `${cluster.dataDir}/pg_hba.conf`,
    "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
  );
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  try {
    await admin`ALTER SYSTEM SET ssl = on`;
    await admin`SELECT pg_reload_conf()`;
  } finally {
    await admin.end();
  }
}

Deno.test({
  name: "TLS: disable is refused, require connects, verify-full checks the CA and the host name",
  sanitizeResources: false,
  fn: async () => {
    const certDir = await Deno.makeTempDir({ prefix: "kickmon-tls-" });
    const cluster = await startThrowawayCluster();
    try {
      await makeCerts(certDir, "DNS:localhost");
      await requireTls(cluster, certDir);
      const base = {
        DATABASE_HOST: "127.0.0.1",
        DATABASE_PORT: String(cluster.port),
        DATABASE_NAME: "postgres",
        DATABASE_USER: "postgres",
        DATABASE_CONNECT_TIMEOUT: "3",
      };
      const health = async (env: Record<string, string>) => {
        const r = await runKickmon(["db", "health"], { ...base, ...env });
        return { code: r.code, out: (r.stdout + r.stderr).trim() };
      };
      // The reload is asynchronous: wait until a plain connection is refused.
      let plain = await health({ DATABASE_SSLMODE: "disable" });
      for (let i = 0; i < 20 && !/no encryption/.test(plain.out); i++) {
        await new Promise((r) => setTimeout(r, 250));
        plain = await health({ DATABASE_SSLMODE: "disable" });
      }
      assert.equal(plain.code, 1, plain.out);
      assert.match(plain.out, /no encryption/);

      const migrate = await runKickmon(["db", "migrate"], { ...base, DATABASE_SSLMODE: "require" });
      assert.equal(migrate.code, 0, migrate.stdout + migrate.stderr);
      const req = await health({ DATABASE_SSLMODE: "require" });
      assert.equal(req.code, 0, req.out);
      assert.match(req.out, /database ok: .*TLSv1\.[23]/);

      // verify-full: the system's roots do not know the test CA.
      const noCa = await health({ DATABASE_SSLMODE: "verify-full", DATABASE_HOST: "localhost" });
      assert.equal(noCa.code, 1, noCa.out);
      assert.match(noCa.out, /certificate/i);
      // The wrong CA.
      const wrongCa = await health({
        DATABASE_SSLMODE: "verify-full",
        DATABASE_HOST: "localhost",
        DATABASE_SSLROOTCERT: `${certDir}/other-ca.pem`,
      });
      assert.equal(wrongCa.code, 1, wrongCa.out);
      // The right CA, but the certificate names localhost and we dialled 127.0.0.1.
      const wrongHost = await health({
        DATABASE_SSLMODE: "verify-full",
        DATABASE_SSLROOTCERT: `${certDir}/test-ca.pem`,
      });
      assert.equal(wrongHost.code, 1, wrongHost.out);
      assert.match(wrongHost.out, /127\.0\.0\.1/);
      // The right CA and the certificate's name.
      const ok = await health({
        DATABASE_SSLMODE: "verify-full",
        DATABASE_HOST: "localhost",
        DATABASE_SSLROOTCERT: `${certDir}/test-ca.pem`,
      });
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /database ok: .*TLSv1\.[23]/);
      // The same through DATABASE_URL parameters.
      const url = await health({
        DATABASE_URL:
          `postgres://postgres@localhost:${cluster.port}/postgres?sslmode=verify-full&sslrootcert=${
            encodeURIComponent(`${certDir}/test-ca.pem`)
          }`,
      });
      assert.equal(url.code, 0, url.out);

      // Configuration mistakes name the variable and exit 2.
      const missing = await health({
        DATABASE_SSLMODE: "verify-full",
        DATABASE_SSLROOTCERT: `${certDir}/nope.pem`,
      });
      assert.equal(missing.code, 2, missing.out);
      assert.match(missing.out, /DATABASE_SSLROOTCERT: cannot read/);
      const notPem = await health({
        DATABASE_SSLMODE: "verify-full",
        DATABASE_SSLROOTCERT: `${certDir}/ext.cnf`,
      });
      assert.equal(notPem.code, 2, notPem.out);
      assert.match(notPem.out, /DATABASE_SSLROOTCERT: .*no PEM certificate/);
      const wrongMode = await health({
        DATABASE_SSLMODE: "require",
        DATABASE_SSLROOTCERT: `${certDir}/test-ca.pem`,
      });
      assert.equal(wrongMode.code, 2, wrongMode.out);
      assert.match(wrongMode.out, /DATABASE_SSLROOTCERT: .*verify-full/);
    } finally {
      await cluster.stop();
      await Deno.remove(certDir, { recursive: true });
    }
  },
});
