// End-to-end test of vectord's Qdrant-compatible REST API through Qdrant's official JS client
// (@qdrant/js-client-rest). Run:
//   VECTORD_URL=http://127.0.0.1:6333 node --test qdrant_client_test.mjs
// (tests/js_client_integration.cc starts a server and runs this). Every expected result is
// computed here by brute force over the same data: ids exactly, scores within a tolerance.
import {QdrantClient} from '@qdrant/js-client-rest';
import assert from 'node:assert/strict';
import {test} from 'node:test';

const URL = process.env.VECTORD_URL;
if (!URL) throw new Error('set VECTORD_URL to the server, e.g. http://127.0.0.1:6333');

const client = new QdrantClient({url: URL, checkCompatibility: false});
const COS = 'js_cosine';
const L2 = 'js_euclid';
const TOL = 1e-4;

// ---------------------------------------------------------------------------------------------
// Deterministic data.
function mulberry32(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(12345);
const randVec = (dim) => Array.from({length: dim}, () => Math.fround(rand() * 2 - 1));

const CITIES = ['Berlin', 'London', 'Moscow', 'Paris', 'Tokyo'];
const TAGS = ['a', 'b', 'c', 'd'];
const UUIDS = [
  '0b2c6a4e-7f51-4c1e-9d1a-3e5b2f8a9c01',
  '2f1e8d7c-6b5a-4938-8271-605f4e3d2c1b',
  '550e8400-e29b-41d4-a716-446655440000',
  '6fa459ea-ee8a-3ca4-894e-db77e160355e',
  '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d',
  'c56a4180-65aa-42ec-a945-5fd21dec0538',
  'f47ac10b-58cc-4372-a567-0e02b2c3d479',
  'ffffffff-0000-4000-8000-000000000001',
];

// 32 numeric ids (not contiguous, some large) + 8 UUIDs.
const NUM_IDS = Array.from({length: 32}, (_, i) => (i < 30 ? i * 3 + 1 : 2 ** 40 + i));
const IDS = [...NUM_IDS, ...UUIDS];

function makePayload(i) {
  const p = {
    city: CITIES[i % CITIES.length],
    price: (i * 7) % 50,
    rating: Math.round(rand() * 1000) / 100,
    tags: TAGS.filter((_, k) => (i >> k) & 1),
    meta: {level: i % 4, inner: {name: `n${i % 3}`}},
  };
  // color: absent, null, [], a string or an array, to exercise is_empty.
  switch (i % 5) {
    case 0:
      break;
    case 1:
      p.color = null;
      break;
    case 2:
      p.color = [];
      break;
    case 3:
      p.color = 'red';
      break;
    default:
      p.color = ['green', 'blue'];
  }
  return p;
}

const POINTS = IDS.map((id, i) => ({id, vector: randVec(4), payload: makePayload(i)}));

// ---------------------------------------------------------------------------------------------
// Brute-force model.
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a) => {
  const n = Math.sqrt(dot(a, a));
  return a.map((x) => x / n);
};
const l2 = (a, b) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
const cosine = (a, b) => dot(norm(a), norm(b));

// Canonical id text: numbers as decimal, UUIDs lower-case.
const idKey = (id) => (typeof id === 'number' ? String(id) : String(id).toLowerCase());
// Qdrant's id order: all numeric ids first (ascending), then UUIDs (by bytes = by hex text).
function idCompare(a, b) {
  const an = typeof a === 'number';
  const bn = typeof b === 'number';
  if (an !== bn) return an ? -1 : 1;
  if (an) return a - b;
  return idKey(a) < idKey(b) ? -1 : idKey(a) > idKey(b) ? 1 : 0;
}

function topK(points, query, k, metric, pred = () => true) {
  const scored = points.filter(pred).map(
      (p) => ({
        id: p.id,
        score: metric === 'Cosine' ? cosine(query, p.vector) : l2(query, p.vector),
      }));
  scored.sort((x, y) => (metric === 'Cosine' ? y.score - x.score : x.score - y.score));
  return scored.slice(0, k);
}

function assertScored(actual, expected, what) {
  assert.deepEqual(
      actual.map((p) => idKey(p.id)),
      expected.map((p) => idKey(p.id)),
      `${what}: ids in order`,
  );
  actual.forEach((p, i) => {
    assert.ok(
        Math.abs(p.score - expected[i].score) < TOL,
        `${what}: score of ${p.id} is ${p.score}, expected ${expected[i].score}`,
    );
  });
}

const sortedKeys = (ids) => ids.map(idKey).sort();
const byId = new Map();
const live = () => [...byId.values()];

// Payload predicates mirroring Qdrant semantics (arrays match if any element matches).
const values = (p, key) => {
  let v = p.payload;
  for (const part of key.split('.')) v = v == null ? undefined : v[part];
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
};
const isEmpty = (p, key) => values(p, key).length === 0;

// ---------------------------------------------------------------------------------------------
test('create collections, exists, list, info', async () => {
  for (const name of [COS, L2]) {
    if ((await client.collectionExists(name)).exists) await client.deleteCollection(name);
  }
  assert.equal(await client.createCollection(COS, {vectors: {size: 4, distance: 'Cosine'}}), true);
  assert.equal(await client.createCollection(L2, {vectors: {size: 4, distance: 'Euclid'}}), true);

  assert.deepEqual(await client.collectionExists(COS), {exists: true});
  assert.deepEqual(await client.collectionExists('js_no_such_collection'), {exists: false});

  const names = (await client.getCollections()).collections.map((c) => c.name);
  assert.ok(names.includes(COS) && names.includes(L2), `collections: ${names}`);

  const info = await client.getCollection(COS);
  assert.equal(info.status, 'green');
  assert.equal(info.points_count, 0);
  assert.deepEqual(
      info.config.params.vectors, {...info.config.params.vectors, size: 4, distance: 'Cosine'});
  const info2 = await client.getCollection(L2);
  assert.equal(info2.config.params.vectors.distance, 'Euclid');

  // Creating it again is a client error; a wrong dimension on upsert too.
  await assert.rejects(
      client.createCollection(COS, {vectors: {size: 4, distance: 'Cosine'}}),
      (e) => e.status >= 400 && e.status < 500,
  );
  await assert.rejects(client.getCollection('js_no_such_collection'), (e) => e.status === 404);
});

test('upsert with wait (numeric and UUID ids, rich payloads) and retrieve', async () => {
  const r = await client.upsert(COS, {wait: true, points: POINTS});
  assert.equal(r.status, 'completed');
  for (const p of POINTS) byId.set(idKey(p.id), structuredClone(p));

  const info = await client.getCollection(COS);
  assert.equal(info.points_count, POINTS.length);

  const want = [NUM_IDS[0], NUM_IDS[31], UUIDS[2], 999999];  // the last does not exist
  const got = await client.retrieve(COS, {ids: want, with_payload: true, with_vector: true});
  assert.deepEqual(sortedKeys(got.map((p) => p.id)), sortedKeys(want.slice(0, 3)));
  for (const p of got) {
    const src = byId.get(idKey(p.id));
    assert.deepEqual(p.payload, src.payload, `payload of ${p.id}`);
    // Cosine collections store normalized vectors, as Qdrant does.
    const n = norm(src.vector);
    p.vector.forEach((x, i) => assert.ok(Math.abs(x - n[i]) < TOL, `vector of ${p.id}`));
  }
  // UUIDs come back in canonical lower-case form even when sent upper-case.
  const upper = await client.retrieve(COS, {ids: [UUIDS[0].toUpperCase()], with_payload: false});
  assert.equal(upper.length, 1);
  assert.equal(upper[0].id, UUIDS[0]);

  // Upserting an existing id replaces it.
  const replaced = {
    id: NUM_IDS[5],
    vector: randVec(4),
    payload: {city: 'Paris', price: 3, tags: ['z']}
  };
  await client.upsert(COS, {wait: true, points: [replaced]});
  byId.set(idKey(replaced.id), structuredClone(replaced));
  const [again] = await client.retrieve(COS, {ids: [replaced.id], with_payload: true});
  assert.deepEqual(again.payload, replaced.payload);
  assert.equal((await client.count(COS, {exact: true})).count, POINTS.length);

  // A wrong dimension rejects the whole batch and changes nothing.
  await assert.rejects(
      client.upsert(COS, {
        wait: true,
        points: [
          {id: 5000, vector: randVec(4)},
          {id: 5001, vector: randVec(3)},
        ],
      }),
      (e) => e.status === 400,
  );
  assert.equal((await client.retrieve(COS, {ids: [5000, 5001]})).length, 0);
});

// Filters with the equivalent JS predicate.
const FILTERS = [
  {
    name: 'must match value',
    filter: {must: [{key: 'city', match: {value: 'London'}}]},
    pred: (p) => values(p, 'city').includes('London'),
  },
  {
    name: 'match value in an array field',
    filter: {must: [{key: 'tags', match: {value: 'b'}}]},
    pred: (p) => values(p, 'tags').includes('b'),
  },
  {
    name: 'match any',
    filter: {must: [{key: 'city', match: {any: ['Berlin', 'Tokyo']}}]},
    pred: (p) => values(p, 'city').some((c) => ['Berlin', 'Tokyo'].includes(c)),
  },
  {
    name: 'match except',
    filter: {must: [{key: 'city', match: {except: ['Berlin', 'Tokyo', 'Paris']}}]},
    pred: (p) => values(p, 'city').some((c) => !['Berlin', 'Tokyo', 'Paris'].includes(c)),
  },
  {
    name: 'range and must_not',
    filter: {
      must: [{key: 'price', range: {gte: 10, lt: 35}}],
      must_not: [{key: 'city', match: {value: 'Moscow'}}],
    },
    pred: (p) =>
        values(p, 'price').some((x) => x >= 10 && x < 35) && !values(p, 'city').includes('Moscow'),
  },
  {
    name: 'should (any of) with must',
    filter: {
      must: [{key: 'rating', range: {gt: 2.5}}],
      should: [
        {key: 'tags', match: {value: 'a'}},
        {key: 'meta.level', match: {value: 3}},
      ],
    },
    pred: (p) => values(p, 'rating').some((x) => x > 2.5) &&
        (values(p, 'tags').includes('a') || values(p, 'meta.level').includes(3)),
  },
  {
    name: 'nested key and nested boolean filter',
    filter: {
      must: [
        {key: 'meta.inner.name', match: {value: 'n1'}},
        {should: [{key: 'price', range: {lte: 20}}, {key: 'city', match: {value: 'Paris'}}]},
      ],
    },
    pred: (p) => values(p, 'meta.inner.name').includes('n1') &&
        (values(p, 'price').some((x) => x <= 20) || values(p, 'city').includes('Paris')),
  },
  {
    name: 'is_empty',
    filter: {must: [{is_empty: {key: 'color'}}]},
    pred: (p) => isEmpty(p, 'color'),
  },
  {
    name: 'must_not is_empty',
    filter: {must_not: [{is_empty: {key: 'color'}}]},
    pred: (p) => !isEmpty(p, 'color'),
  },
  {
    name: 'has_id (numeric and UUID)',
    filter: {must: [{has_id: [NUM_IDS[1], NUM_IDS[2], NUM_IDS[30], UUIDS[3], UUIDS[6], 777777]}]},
    pred: (p) => [NUM_IDS[1], NUM_IDS[2], NUM_IDS[30], UUIDS[3], UUIDS[6]].map(idKey).includes(
        idKey(p.id)),
  },
  {
    name: 'must_not has_id',
    filter: {must_not: [{has_id: [NUM_IDS[0], UUIDS[0]]}]},
    pred: (p) => ![NUM_IDS[0], UUIDS[0]].map(idKey).includes(idKey(p.id)),
  },
];

test('filters select exactly the model points (count)', async () => {
  for (const f of FILTERS) {
    const expected = live().filter(f.pred).length;
    assert.ok(expected > 0 && expected < live().length, `${f.name}: test data must be selective`);
    const {count} = await client.count(COS, {filter: f.filter, exact: true});
    assert.equal(count, expected, `count with filter '${f.name}'`);
  }
  assert.equal((await client.count(COS, {exact: true})).count, live().length);
});

test('query (universal API) with filters matches brute force', async () => {
  for (let qi = 0; qi < 3; ++qi) {
    const q = randVec(4);
    const res = await client.query(COS, {query: q, limit: 5, with_payload: true});
    assertScored(res.points, topK(live(), q, 5, 'Cosine'), `query ${qi} unfiltered`);
    for (const p of res.points) assert.deepEqual(p.payload, byId.get(idKey(p.id)).payload);
    for (const f of FILTERS) {
      const got = await client.query(COS, {query: q, filter: f.filter, limit: 6});
      assertScored(got.points, topK(live(), q, 6, 'Cosine', f.pred), `query ${qi} '${f.name}'`);
    }
  }
  // with_vector returns the stored (normalized) vector; offset skips the best ones.
  const q = randVec(4);
  const page = await client.query(COS, {query: q, limit: 3, offset: 2, with_vector: true});
  assertScored(page.points, topK(live(), q, 5, 'Cosine').slice(2), 'query offset');
  for (const p of page.points) {
    const n = norm(byId.get(idKey(p.id)).vector);
    p.vector.forEach((x, i) => assert.ok(Math.abs(x - n[i]) < TOL));
  }
});

test('search (legacy API) with filter and score_threshold', async () => {
  const q = randVec(4);
  const f = FILTERS[4];
  const got =
      await client.search(COS, {vector: q, filter: f.filter, limit: 4, with_payload: false});
  assertScored(got, topK(live(), q, 4, 'Cosine', f.pred), 'search filtered');
  assert.ok(got.every((p) => p.payload === undefined || p.payload === null), 'no payload asked');

  const all = topK(live(), q, live().length, 'Cosine');
  const threshold = (all[6].score + all[7].score) / 2;  // exactly 7 points pass
  const thr = await client.search(COS, {vector: q, limit: 100, score_threshold: threshold});
  assertScored(thr, all.slice(0, 7), 'search score_threshold');
});

test('Euclid collection: batch upsert, search scores are L2 distances', async () => {
  const pts = Array.from({length: 25}, (_, i) => ({
                                         id: i + 100,
                                         vector: randVec(4),
                                         payload: {even: i % 2 === 0, n: i},
                                       }));
  // Column-oriented "batch" form for the first half, list form for the rest.
  const half = pts.slice(0, 12);
  await client.upsert(L2, {
    wait: true,
    batch: {
      ids: half.map((p) => p.id),
      vectors: half.map((p) => p.vector),
      payloads: half.map((p) => p.payload),
    },
  });
  await client.upsert(L2, {wait: true, points: pts.slice(12)});
  assert.equal((await client.count(L2, {})).count, 25);

  for (let qi = 0; qi < 3; ++qi) {
    const q = randVec(4);
    const got = await client.search(L2, {vector: q, limit: 5});
    assertScored(got, topK(pts, q, 5, 'Euclid'), `euclid search ${qi}`);
    const filt = {must: [{key: 'even', match: {value: true}}, {key: 'n', range: {gte: 6}}]};
    const fq = await client.query(L2, {query: q, filter: filt, limit: 4});
    assertScored(
        fq.points,
        topK(pts, q, 4, 'Euclid', (p) => p.payload.even && p.payload.n >= 6),
        `euclid filtered query ${qi}`,
    );
  }
  // Batch forms of search and query: one result list per request, in request order.
  const qs = [randVec(4), randVec(4), randVec(4)];
  const sb = await client.searchBatch(L2, {
    searches: qs.map((vector, i) => ({vector, limit: 3 + i, with_payload: true})),
  });
  assert.equal(sb.length, 3);
  sb.forEach((res, i) => assertScored(res, topK(pts, qs[i], 3 + i, 'Euclid'), `searchBatch ${i}`));
  const oddFilter = {must: [{key: 'even', match: {value: false}}]};
  const qb = await client.queryBatch(L2, {
    searches: qs.map((query) => ({query, filter: oddFilter, limit: 4})),
  });
  assert.equal(qb.length, 3);
  qb.forEach(
      (res, i) => assertScored(
          res.points, topK(pts, qs[i], 4, 'Euclid', (p) => !p.payload.even), `queryBatch ${i}`),
  );

  // Euclid vectors are stored as given.
  const [p7] = await client.retrieve(L2, {ids: [107], with_vector: true});
  p7.vector.forEach((x, i) => assert.ok(Math.abs(x - pts[7].vector[i]) < 1e-6));
});

test('scroll pages through ids in order, with and without filter', async () => {
  async function scrollAll(filter, limit) {
    const ids = [];
    let offset;
    let pages = 0;
    do {
      const page = await client.scroll(COS, {filter, limit, offset, with_payload: true});
      assert.ok(page.points.length <= limit);
      for (const p of page.points) {
        ids.push(p.id);
        assert.deepEqual(p.payload, byId.get(idKey(p.id)).payload, `scroll payload ${p.id}`);
      }
      offset = page.next_page_offset ?? undefined;
      assert.ok(++pages < 100, 'scroll does not terminate');
    } while (offset !== undefined);
    return ids;
  }
  const expectAll = live().map((p) => p.id).sort(idCompare).map(idKey);
  assert.deepEqual((await scrollAll(undefined, 7)).map(idKey), expectAll, 'scroll all');
  const f = FILTERS[5];
  const expectF = live().filter(f.pred).map((p) => p.id).sort(idCompare).map(idKey);
  assert.deepEqual((await scrollAll(f.filter, 3)).map(idKey), expectF, 'scroll filtered');

  // The first page of 5 says where the next one starts.
  const first = await client.scroll(COS, {limit: 5, with_payload: false});
  assert.deepEqual(first.points.map((p) => idKey(p.id)), expectAll.slice(0, 5));
  assert.equal(idKey(first.next_page_offset), expectAll[5]);
});

test('set, overwrite, delete and clear payload', async () => {
  const [a, b, c, d] = [NUM_IDS[3], NUM_IDS[4], UUIDS[1], NUM_IDS[8]];
  const get = async (id) =>
      (await client.retrieve(COS, {ids: [id], with_payload: true}))[0].payload;

  // setPayload merges keys.
  await client.setPayload(COS, {payload: {extra: 'x', price: 1000}, points: [a, c], wait: true});
  for (const id of [a, c]) {
    const m = byId.get(idKey(id));
    m.payload = {...m.payload, extra: 'x', price: 1000};
    assert.deepEqual(await get(id), m.payload);
  }
  // setPayload by filter.
  const sel = {must: [{key: 'price', range: {gte: 1000}}]};
  await client.setPayload(COS, {payload: {flagged: true}, filter: sel, wait: true});
  for (const p of live())
    if (values(p, 'price').some((x) => x >= 1000)) p.payload.flagged = true;
  assert.equal(
      (await client.count(COS, {filter: {must: [{key: 'flagged', match: {value: true}}]}})).count,
      2);

  // setPayload at a nested key.
  await client.setPayload(COS, {payload: {level: 9}, points: [d], key: 'meta', wait: true});
  byId.get(idKey(d)).payload.meta.level = 9;
  assert.deepEqual(await get(d), byId.get(idKey(d)).payload);

  // overwritePayload replaces the whole payload.
  await client.overwritePayload(
      COS, {payload: {only: [1, 2], city: 'Berlin'}, points: [b], wait: true});
  byId.get(idKey(b)).payload = {only: [1, 2], city: 'Berlin'};
  assert.deepEqual(await get(b), {only: [1, 2], city: 'Berlin'});

  // deletePayload removes keys.
  await client.deletePayload(COS, {keys: ['extra', 'tags'], points: [a, c], wait: true});
  for (const id of [a, c]) {
    const m = byId.get(idKey(id));
    delete m.payload.extra;
    delete m.payload.tags;
    assert.deepEqual(await get(id), m.payload);
  }
  // clearPayload empties it.
  await client.clearPayload(COS, {points: [d], wait: true});
  byId.get(idKey(d)).payload = {};
  assert.deepEqual((await get(d)) ?? {}, {});
  // setPayload on an empty payload (keeps every point's city present: 'except' on a missing
  // field is left out of this test).
  await client.setPayload(COS, {payload: {city: 'Tokyo', price: 0}, points: [d], wait: true});
  byId.get(idKey(d)).payload = {city: 'Tokyo', price: 0};
  assert.deepEqual(await get(d), {city: 'Tokyo', price: 0});

  // Filters see the new payloads.
  for (const f of FILTERS) {
    const {count} = await client.count(COS, {filter: f.filter, exact: true});
    assert.equal(count, live().filter(f.pred).length, `count after payload ops '${f.name}'`);
  }
});

test('payload indexes: create, reported in info, same results, delete', async () => {
  await client.createPayloadIndex(COS, {field_name: 'city', field_schema: 'keyword', wait: true});
  await client.createPayloadIndex(COS, {field_name: 'price', field_schema: 'integer', wait: true});
  let info = await client.getCollection(COS);
  assert.equal(info.payload_schema.city.data_type, 'keyword');
  assert.equal(info.payload_schema.price.data_type, 'integer');

  const q = randVec(4);
  for (const f of FILTERS) {
    assert.equal(
        (await client.count(COS, {filter: f.filter})).count, live().filter(f.pred).length,
        `indexed count '${f.name}'`);
    const got = await client.query(COS, {query: q, filter: f.filter, limit: 5});
    assertScored(got.points, topK(live(), q, 5, 'Cosine', f.pred), `indexed query '${f.name}'`);
  }
  await client.deletePayloadIndex(COS, 'city', {wait: true});
  info = await client.getCollection(COS);
  assert.equal(info.payload_schema.city, undefined);
  assert.equal(info.payload_schema.price.data_type, 'integer');
});

test('delete points by id and by filter', async () => {
  const ids = [NUM_IDS[0], NUM_IDS[10], UUIDS[4]];
  const r = await client.delete(COS, {points: ids, wait: true});
  assert.equal(r.status, 'completed');
  for (const id of ids) byId.delete(idKey(id));
  assert.equal((await client.retrieve(COS, {ids})).length, 0);
  assert.equal((await client.count(COS, {})).count, live().length);

  const filter = {must: [{key: 'city', match: {any: ['London', 'Moscow']}}]};
  const doomed =
      live().filter((p) => values(p, 'city').some((c) => ['London', 'Moscow'].includes(c)));
  assert.ok(doomed.length > 0);
  await client.delete(COS, {filter, wait: true});
  for (const p of doomed) byId.delete(idKey(p.id));
  assert.equal((await client.count(COS, {})).count, live().length);
  assert.equal((await client.count(COS, {filter})).count, 0);
  assert.equal((await client.getCollection(COS)).points_count, live().length);

  const q = randVec(4);
  const got = await client.query(COS, {query: q, limit: 100});
  assertScored(got.points, topK(live(), q, 100, 'Cosine'), 'query after deletes');
});

test('multi-vector collection (max_sim): upsert sets, query with a set, exact Chamfer scores', async () => {
  const MV = 'js_multivector';
  await client.createCollection(MV, {
    vectors: {size: 6, distance: 'Dot', multivector_config: {comparator: 'max_sim'}},
  });
  const info = await client.getCollection(MV);
  assert.equal(info.config.params.vectors.multivector_config.comparator, 'max_sim');
  const docs = Array.from({length: 60}, (_, i) => ({
                                          id: i + 1,
                                          vector: Array.from({length: 1 + (i % 5)}, () => randVec(6)),
                                          payload: {odd: i % 2 === 1},
                                        }));
  await client.upsert(MV, {wait: true, points: docs});
  assert.equal((await client.count(MV, {})).count, 60);
  const chamfer = (q, d) => q.reduce(
      (s, a) => s + Math.max(...d.map((b) => a.reduce((t, x, k) => t + x * b[k], 0))), 0);
  for (let qi = 0; qi < 3; ++qi) {
    const q = [randVec(6), randVec(6)];
    const want = docs.map((d) => ({id: d.id, score: chamfer(q, d.vector), payload: d.payload}))
                     .sort((a, b) => b.score - a.score || a.id - b.id);
    // Every document a candidate: exactly the Chamfer top-5.
    const got = await client.query(MV, {query: q, limit: 5, params: {muvera: {candidates: 60}}});
    assert.deepEqual(got.points.map((p) => p.id), want.slice(0, 5).map((p) => p.id));
    got.points.forEach((p, i) => assert.ok(Math.abs(p.score - want[i].score) < TOL));
    const ex = await client.query(
        MV, {query: q, limit: 4, filter: {must: [{key: 'odd', match: {value: true}}]},
             params: {exact: true}});
    assert.deepEqual(
        ex.points.map((p) => p.id),
        want.filter((p) => p.payload.odd).slice(0, 4).map((p) => p.id));
  }
  const [p3] = await client.retrieve(MV, {ids: [3], with_vector: true});
  assert.equal(p3.vector.length, docs[2].vector.length);
  p3.vector.forEach((v, j) => v.forEach((x, k) => assert.ok(Math.abs(x - docs[2].vector[j][k]) < 1e-6)));
  // A ragged set is refused and changes nothing.
  await assert.rejects(
      client.upsert(MV, {wait: true, points: [{id: 99, vector: [randVec(6), randVec(5)]}]}),
      (e) => e.status === 400);
  assert.equal((await client.count(MV, {})).count, 60);
  assert.equal(await client.deleteCollection(MV), true);
});

test('delete collections', async () => {
  assert.equal(await client.deleteCollection(COS), true);
  assert.equal(await client.deleteCollection(L2), true);
  assert.deepEqual(await client.collectionExists(COS), {exists: false});
  const names = (await client.getCollections()).collections.map((c) => c.name);
  assert.ok(!names.includes(COS) && !names.includes(L2));
  await assert.rejects(client.count(COS, {}), (e) => e.status === 404);
});
