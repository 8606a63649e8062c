// Writes audit documents the way the platform's Node.js services do: with the
// official `mongodb` driver (pinned in package.json), native BSON types and
// camelCase names. Used by tests/mongo/test_node_documents.py.
//
//   node tests/mongo/node_writer.js < spec.json
//
// spec: {"uri": "...", "db": "...", "tenants": {"acme": "<ref>", ...},
//        "people": {"sarah": "<ref>", ...}, "now": <epoch ms>}
// Prints one JSON line: {"<label>": "<hex _id>", ...} for the documents inserted.
"use strict";

const { MongoClient, ObjectId, Decimal128, Long, Binary, Double, Int32 } = require("mongodb");

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (data += chunk));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

function documents(spec) {
  const now = spec.now;
  const at = (minutesAgo) => new Date(now - minutesAgo * 60000);
  const { acme, globex, initech } = spec.tenants;
  const base = (minutesAgo, extra) => ({
    _id: new ObjectId(),
    tenantId: acme,
    actorType: "agent",
    actorId: "agent-node-writer",
    actorName: "Node Writer Agent",
    action: "updated",
    resourceType: "strategy",
    resourceId: "st-node-1",
    resourceName: "Node strategy",
    description: "Node Writer Agent updated the strategy",
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    createdAt: at(minutesAgo),
    ...extra,
  });
  const ownerId = new ObjectId("65f000000000000000000abc");
  return {
    // before/after holding every BSON type a Mongoose snapshot carries.
    bson_states: base(1, {
      description: "Node bson states",
      before: {
        _id: ownerId,
        status: "draft",
        budget: Decimal128.fromString("1234.50"),
        views: Long.fromString("9007199254740993"),
        ratio: new Double(0.25),
        count: new Int32(7),
        publishedAt: new Date(Date.UTC(2026, 0, 31, 12, 30, 45, 123)),
        checksum: new Binary(Buffer.from([0, 1, 2, 250, 255])),
        reviewer: null,
        tags: [["a", "b"], [{ deep: [1, 2, { deeper: ownerId }] }]],
        apiKey: "sk-live-must-not-show",
      },
      after: {
        _id: ownerId,
        status: "approved",
        budget: Decimal128.fromString("0.10"),
        views: Long.fromString("9007199254740995"),
        ratio: new Double(0.5),
        count: new Int32(8),
        publishedAt: new Date(Date.UTC(2026, 1, 1, 0, 0, 0, 0)),
        checksum: new Binary(Buffer.from([9, 9])),
        reviewer: { id: new ObjectId("65f000000000000000000def"), name: "Rita" },
        tags: [["a"], []],
        apiKey: "sk-live-still-secret",
      },
    }),
    // tenantId and actorId as ObjectIds (the platform's own ids are ObjectIds).
    objectid_tenant: base(2, {
      description: "Node objectid tenant",
      tenantId: new ObjectId(acme),
      actorType: "human",
      actorId: new ObjectId(spec.people.sarah),
      actorName: "Sarah Admin",
      before: { status: "draft" },
      after: { status: "approved" },
    }),
    objectid_tenant_globex: base(3, {
      description: "Node objectid globex",
      tenantId: new ObjectId(globex),
      actorType: "human",
      actorId: new ObjectId(),
      actorName: "Gloria via Node",
    }),
    objectid_tenant_initech: base(4, {
      description: "Node objectid initech",
      tenantId: new ObjectId(initech),
    }),
    // Optional fields missing altogether (not null).
    missing_optional: (() => {
      const doc = base(5, { description: "Node missing optional fields" });
      delete doc.resourceName;
      delete doc.traceId;
      delete doc.actorName;
      return doc;
    })(),
    // camelCase and mixed-case actions, and a resource type in camelCase.
    camel_action: base(6, {
      description: "Node camel action",
      action: "autoActivated",
      resourceType: "agentConfig",
    }),
    mixed_action: base(7, { description: "Node mixed action", action: "Auto_Activated" }),
    // Fields this project does not know: Mongoose's __v, updatedAt, metadata.
    extra_fields: base(8, {
      description: "Node extra fields",
      __v: 0,
      updatedAt: at(8),
      metadata: { ip: "203.0.113.9", userAgent: "node" },
      after: { status: "sent" },
    }),
    // Platform-level: no tenant at all (missing, and null).
    platform_missing: (() => {
      const doc = base(9, { description: "Node platform missing tenant", actorType: "system" });
      delete doc.tenantId;
      return doc;
    })(),
    platform_null: base(10, {
      description: "Node platform null tenant",
      actorType: "system",
      tenantId: null,
    }),
    // Malformed: what a buggy writer stores (issue 13, point 3).
    bad_created_string: base(11, {
      description: "Node createdAt as a string",
      createdAt: new Date(now - 11 * 60000).toISOString(),
    }),
    bad_created_number: base(12, {
      description: "Node createdAt as a number",
      createdAt: now - 12 * 60000,
    }),
    bad_missing_required: (() => {
      const doc = base(13, { description: "Node required fields missing" });
      delete doc.actorType;
      delete doc.action;
      delete doc.resourceId;
      return doc;
    })(),
    bad_wrong_types: base(14, {
      description: { text: "Node description as an object" },
      actorType: 5,
      action: 42,
      resourceType: ["strategy"],
      resourceId: 77,
      actorName: true,
      traceId: 123,
    }),
  };
}

async function main() {
  const spec = JSON.parse(await readStdin());
  const client = new MongoClient(spec.uri, { serverSelectionTimeoutMS: 10000 });
  try {
    await client.connect();
    const docs = documents(spec);
    await client.db(spec.db).collection("audit_logs").insertMany(Object.values(docs));
    const ids = {};
    for (const [label, doc] of Object.entries(docs)) ids[label] = doc._id.toHexString();
    process.stdout.write(JSON.stringify(ids) + "\n");
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
