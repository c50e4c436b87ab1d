// One segment checked against the ledger in the browser, as `orbitcast verify` checks it
// (orbitcast/ledger/stream_check.py): the tree head is signed by the published key (Ed25519),
// the proof's leaf names this feed/rendition/seq, the RFC 9162 audit path leads from the leaf
// to the head's root, and the segment's size, SHA-256 and program date-time equal the leaf's.
// WebCrypto only; the byte layouts are those of orbitcast/ledger/leaf.py and tree_head.py.
'use strict';
window.OrbitcastLedger = (() => {
  // WebCrypto exists only in a secure context: a page over HTTPS or from localhost.
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  const ascii = s => new TextEncoder().encode(s);
  const STH_DOMAIN = ascii('orbitcast-sth\0');

  function fromHex(text) {
    if (typeof text !== 'string' || text.length % 2 || /[^0-9a-f]/i.test(text)) throw new Error('not hex');
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }
  const toHex = bytes => Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  function concat(...chunks) {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  }
  function u64(value) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    return out;
  }
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async bytes => new Uint8Array(await subtle.digest('SHA-256', bytes));
  const leafHash = leaf => sha256(concat([0], leaf));
  const nodeHash = (left, right) => sha256(concat([1], left, right));

  // Leaf v1: u8 version, u8 len + feed, u8 len + rendition, u64 seq, 24 B time, u64 size, 32 B SHA-256.
  function decodeLeaf(leaf) {
    const view = new DataView(leaf.buffer, leaf.byteOffset, leaf.byteLength);
    if (leaf[0] !== 1) throw new Error(`unknown leaf version ${leaf[0]}`);
    const nf = leaf[1], nr = leaf[2 + nf], at = 3 + nf + nr;
    if (leaf.length !== at + 8 + 24 + 8 + 32) throw new Error('leaf has the wrong length');
    const text = bytes => new TextDecoder().decode(bytes);
    return {feed: text(leaf.subarray(2, 2 + nf)), rendition: text(leaf.subarray(3 + nf, at)),
            seq: view.getBigUint64(at), pdt: text(leaf.subarray(at + 8, at + 32)),
            size: view.getBigUint64(at + 32), sha256: leaf.subarray(at + 40)};
  }

  // RFC 9162 2.1.3.2, step by step as orbitcast/ledger/proofs.py follows it.
  async function rootFromPath(index, size, hash, path) {
    if (!(index >= 0 && index < size)) throw new Error(`leaf index ${index} is not inside a tree of ${size}`);
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = hash;
    for (const p of path) {
      if (p.length !== 32) throw new Error('audit path holds a hash that is not 32 bytes');
      if (sn === 0n) throw new Error('audit path is too long for the tree size');
      if (fn & 1n || fn === sn) {
        r = await nodeHash(p, r);
        while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error('audit path is too short for the tree size');
    return r;
  }

  // RFC 9162 2.1.4.2 (orbitcast/ledger/proofs.py verify_consistency): the tree of `first`
  // leaves is a prefix of the tree of `second`. Throws with the step that failed.
  async function checkConsistency(first, second, firstRoot, secondRoot, path) {
    if (first > second) throw new Error(`log shrank from ${first} to ${second} entries`);
    if (first === second) {
      if (path.length || !equal(firstRoot, secondRoot)) throw new Error('two heads of the same size have different roots');
      return;
    }
    if (first === 0) return;
    if (!path.length) throw new Error('consistency path is empty');
    const proof = (first & (first - 1)) === 0 ? [firstRoot, ...path] : path.slice();
    let fn = BigInt(first) - 1n, sn = BigInt(second) - 1n;
    while (fn & 1n) { fn >>= 1n; sn >>= 1n; }
    let fr = proof[0], sr = proof[0];
    for (const c of proof.slice(1)) {
      if (sn === 0n) throw new Error('consistency path is too long');
      if (fn & 1n || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        sr = await nodeHash(sr, c);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error('consistency path is too short');
    if (!equal(fr, firstRoot) || !equal(sr, secondRoot)) throw new Error('consistency path does not lead to both roots');
  }

  // A later head (its signature already checked) extends the one this page trusted before, by
  // the ledger's consistency proof (`fetchProof(first, second)` -> the /consistency JSON).
  // -> null when it does, else the reason.
  // A failed fetch is thrown to the caller: it says nothing about the log.
  async function extendsHead(earlier, later, fetchProof) {
    const answer = earlier.tree_size < later.tree_size && earlier.tree_size > 0
      ? await fetchProof(earlier.tree_size, later.tree_size) : {proof: []};
    try {
      const path = answer.proof.map(fromHex);
      await checkConsistency(earlier.tree_size, later.tree_size, fromHex(earlier.root_hash), fromHex(later.root_hash), path);
      return null;
    } catch (e) {
      return `head at size ${later.tree_size} does not extend the head at size ${earlier.tree_size}: ${e.message}`;
    }
  }

  function headMessage(head) {
    const feed = ascii(head.feed);
    return concat(STH_DOMAIN, [1, feed.length], feed, u64(head.tree_size), u64(head.timestamp), fromHex(head.root_hash));
  }

  // true / false, or null where this browser's WebCrypto has no Ed25519 (Chromium before 137).
  async function headSigned(head, publicKeyHex) {
    let key;
    try {
      key = await subtle.importKey('raw', fromHex(publicKeyHex), {name: 'Ed25519'}, false, ['verify']);
    } catch (e) {
      if (e.name === 'NotSupportedError') return null;
      throw e;
    }
    return subtle.verify({name: 'Ed25519'}, key, fromHex(head.signature), headMessage(head));
  }

  // -> {ok, reason, treeSize, signature: 'verified' | 'unchecked', head}; never throws.
  // `pdt`: the playlist's EXT-X-PROGRAM-DATE-TIME of the segment (a string), when it gave one.
  async function checkSegment({data, proof, publicKey, feed, rendition, seq, pdt}) {
    const fail = reason => ({ok: false, reason, treeSize: proof && proof.tree_head ? proof.tree_head.tree_size : null});
    let head, leaf, path;
    try {
      head = proof.tree_head;
      leaf = fromHex(proof.leaf);
      path = proof.audit_path.map(fromHex);
      if (!Number.isInteger(proof.leaf_index) || !Number.isInteger(head.tree_size)) throw new Error('leaf_index or tree_size is not an integer');
    } catch (e) {
      return fail(`malformed proof: ${e.message}`);
    }
    let signed;
    try {
      signed = await headSigned(head, publicKey);
    } catch (e) {
      return fail(`malformed tree head: ${e.message}`);
    }
    if (signed === false) return fail(`tree head at size ${head.tree_size}: signature does not verify`);
    let fields;
    try {
      fields = decodeLeaf(leaf);
    } catch (e) {
      return fail(`malformed leaf: ${e.message}`);
    }
    if (fields.feed !== feed || fields.rendition !== rendition || fields.seq !== BigInt(seq)) {
      return fail(`proof is for ${fields.feed}/${fields.rendition}/${fields.seq}, not this segment`);
    }
    try {
      const root = await rootFromPath(proof.leaf_index, head.tree_size, await leafHash(leaf), path);
      if (!equal(root, fromHex(head.root_hash))) throw new Error('audit path leads to a different root');
    } catch (e) {
      return fail(`not in the log: ${e.message}`);
    }
    if (BigInt(data.length) !== fields.size) return fail(`size ${data.length} bytes, ledger says ${fields.size}`);
    const digest = await sha256(data);
    if (!equal(digest, fields.sha256)) {
      return fail(`bytes differ from the ledger (sha256 ${toHex(digest).slice(0, 16)}…, ledger ${toHex(fields.sha256).slice(0, 16)}…)`);
    }
    if (pdt) {
      const when = Date.parse(pdt);
      if (Number.isNaN(when) || new Date(when).toISOString() !== fields.pdt) {
        return fail(`playlist program date-time ${pdt} differs from the ledger's ${fields.pdt}`);
      }
    }
    return {ok: true, reason: null, treeSize: head.tree_size, signature: signed ? 'verified' : 'unchecked', head};
  }

  return {available: !!subtle, checkSegment, checkConsistency, extendsHead, decodeLeaf, rootFromPath, headSigned,
          fromHex, toHex};
})();
