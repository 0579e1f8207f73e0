import assert from "node:assert/strict";
import { leaderOnly, NotLeaderError, STANDALONE } from "./leader_gate.ts";

class Client {
  readonly label = "client";
  #calls = 0;
  get calls(): number {
    return this.#calls;
  }
  fetch(n: number): Promise<number> {
    this.#calls++;
    return Promise.resolve(n * 2);
  }
}

Deno.test("leaderOnly: calls pass while allowed, are refused (not made) once not", async () => {
  const client = new Client();
  let leading = true;
  const api = leaderOnly(client, () => leading);
  assert.equal(await api.fetch(2), 4);
  assert.equal(api.label, "client");
  assert.equal(api.calls, 1); // a getter reading a private field still works
  leading = false;
  await assert.rejects(api.fetch(3), NotLeaderError);
  assert.equal(client.calls, 1, "the refused call never reached the client");
  leading = true;
  assert.equal(await api.fetch(5), 10);
});

Deno.test("STANDALONE: always the leader, never a change", () => {
  assert.equal(STANDALONE.isLeader, true);
  const s = STANDALONE.snapshot();
  assert.equal(s.role, "leader");
  assert.equal(s.changes_total, 0);
  assert.equal(s.leader?.pid, Deno.pid);
});
