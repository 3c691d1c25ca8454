//! The model file and its scorer: a hashed linear softmax classifier with i8 weights.
//!
//! Layout (little-endian): magic `CLQM`, format version, the [`FeatureSpec`] words, label count and labels
//! (length-prefixed UTF-8), the weight scale, one f32 bias per label, `2^bits × labels` i8 weights (row per
//! bucket), the bit count of the known-words set and its u64 words (0 = none), named f32 parameters, the
//! lexicon's entry count and its i8 table (0 = none; version 1 files end before it), and an FNV-1a
//! checksum of everything before it. One 8-bit weight per bucket and label keeps the 33-language model at 8.7 MB (2^18 buckets), and a
//! row of weights per bucket means one feature is one contiguous add.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::features::{FeatureSpec, WordContext, known_word_bucket};
use crate::hash::checksum;
use crate::lexicon::{LEXICON_BITS, Lexicon, WordEntry};
use crate::tokens::Tokens;

const MAGIC: &[u8; 4] = b"CLQM";
const VERSION: u32 = 2;

/// Why a model file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid model file: {}", self.0)
    }
}

impl std::error::Error for ModelError {}

#[derive(Clone, Debug)]
pub struct LinearModel {
    pub spec: FeatureSpec,
    pub labels: Vec<String>,
    pub scale: f32,
    pub bias: Vec<f32>,
    pub weights: Vec<i8>,
    /// Words seen in training (a bitset over [`known_word_bucket`]), for models that must tell when a text
    /// is in a language they never learned.
    pub known_bits: u32,
    pub known: Vec<u64>,
    /// Named numbers chosen at training time (thresholds), read by the task that uses the model.
    pub params: Vec<(String, f32)>,
    /// A polarity lexicon whose features ([`Lexicon::features`]) the model reads besides `spec`'s.
    pub lexicon: Option<Lexicon>,
    /// Tells this model's entries in a [`Scratch`]'s word cache from another's. Weights or a spec changed
    /// after a model has scored text need a fresh id (`CacheId::default()`), or a scratch that scored
    /// with the old ones would reuse their sums and word contexts.
    pub cache_id: CacheId,
}

/// A process-unique model identity for [`Scratch`]'s word cache. `Default` and `Clone` both draw a new
/// one: a clone is a model of its own (its weights may be changed).
#[derive(Debug, PartialEq, Eq)]
pub struct CacheId(u64);

impl Default for CacheId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Clone for CacheId {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Reusable buffers for scoring one text after another.
#[derive(Default, Debug)]
pub struct Scratch {
    pub tokens: Tokens,
    pub features: Vec<u32>,
    acc: Vec<i32>,
    words: WordCache,
    /// The lexicon entry of each word of the text being scored (models with a lexicon), from the cache.
    lex: Vec<WordEntry>,
    /// The [`WordContext`] of each word of the text being scored (models that keep them:
    /// [`FeatureSpec::reads_word_context`]), from the cache.
    contexts: Vec<WordContext>,
}

/// Scratches kept per thread by [`Scratch::pooled`]: enough for every built-in model and a few more.
const POOLED_PER_THREAD: usize = 8;

thread_local! {
    static POOL: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

impl Scratch {
    /// A scratch from this thread's pool, preferably the one last used with `model`, so that its word cache
    /// is warm: SQL functions score batch after batch of the same column on the same worker threads, and a
    /// fresh scratch per batch relearns the same few thousand words every 8,192 rows. It goes back to the
    /// pool when dropped. A scratch of another model's (or a new one) is cleared as it is first used.
    /// Memory: a scratch's word cache is about 450 KB (sentiment, with its words' contexts), 450 KB
    /// (intent) or 750 KB (language), so a worker thread that ran all three keeps about 1.7 MB.
    pub fn pooled(model: &LinearModel) -> PooledScratch {
        let taken = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let at = pool
                    .iter()
                    .rposition(|s| s.words.owner == model.cache_id.0)
                    .or_else(|| pool.len().checked_sub(1))?;
                Some(pool.swap_remove(at))
            })
            .ok()
            .flatten();
        PooledScratch(taken.unwrap_or_default())
    }
}

/// A [`Scratch`] on loan from its thread's pool ([`Scratch::pooled`]).
#[derive(Debug)]
pub struct PooledScratch(Scratch);

impl Deref for PooledScratch {
    type Target = Scratch;

    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl DerefMut for PooledScratch {
    fn deref_mut(&mut self) -> &mut Scratch {
        &mut self.0
    }
}

impl Drop for PooledScratch {
    fn drop(&mut self) {
        // An empty scratch allocates nothing.
        let scratch = std::mem::take(&mut self.0);
        // During thread exit the pool may be gone already: then the scratch is simply freed.
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut()
                && pool.len() < POOLED_PER_THREAD
            {
                pool.push(scratch);
            }
        });
    }
}

/// Longest word (in bytes) whose feature sums are cached; with its length in the last byte, a
/// key is the word's bytes, zero padded.
const CACHED_WORD_BYTES: usize = 15;
/// Slots of the word cache, in sets of [`CACHE_WAYS`]. Measured on short distinct messages
/// (benches/README.md): 4,096 slots, one per word, kept 81% of words; 8,192 in sets of four keep 89%,
/// and their sums for the 33 languages (540 KB) still fit a core's L2 cache, where 16,384 and 65,536
/// slots, one per word, were no faster.
const CACHE_SLOTS: usize = 8192;
/// The slots a word may take (its set's); the least recently used one makes room for a new word.
const CACHE_WAYS: usize = 4;

/// The summed weight rows of recently seen words' own features (character n-grams, and the word itself
/// where no negation can change it), for one model at a time; set associative, least recently used out.
///
/// Those features (15–25 for a six-letter word) depend on the word alone, and chat repeats its words: the
/// top thousand cover most of a day's messages. Summing their rows once per distinct word replaces a
/// dozen random reads of the weight table with one read of a small one (benches/README.md). The sums
/// are exact (integer), so scores do not depend on what was cached.
#[derive(Default, Debug)]
struct WordCache {
    owner: u64,
    width: usize,
    keys: Vec<[u8; CACHED_WORD_BYTES + 1]>,
    counts: Vec<u16>,
    /// When each slot was last used, in words scored ([`Self::tick`]); 0 for a slot never used (or not
    /// used since the count last started over).
    used: Vec<u32>,
    tick: u32,
    sums: Vec<i16>,
    /// Whether the word is in the model's known-words set.
    known: Vec<bool>,
    /// The word's lexicon entry (models with a lexicon).
    lex: Vec<WordEntry>,
    /// The word's [`WordContext`] ([`FeatureSpec::reads_word_context`]; empty for other models).
    contexts: Vec<WordContext>,
    /// Words of the last text scored that are in the known-words set.
    known_words: usize,
    /// A missed word's n-grams, and their sum.
    grams: Vec<u32>,
    row: Vec<i32>,
}

impl WordCache {
    /// Empties the cache unless it holds `owner`'s sums for `width` labels (and their words' contexts,
    /// when `contexts`).
    fn prepare(&mut self, owner: u64, width: usize, contexts: bool) {
        let has_contexts = self.contexts.len() == CACHE_SLOTS;
        if self.owner == owner
            && self.width == width
            && !self.keys.is_empty()
            && has_contexts == contexts
        {
            return;
        }
        self.contexts.clear();
        if contexts {
            self.contexts.resize(CACHE_SLOTS, WordContext::default());
        }
        self.owner = owner;
        self.width = width;
        self.keys.clear();
        self.keys.resize(CACHE_SLOTS, [0; CACHED_WORD_BYTES + 1]);
        self.counts.clear();
        self.counts.resize(CACHE_SLOTS, 0);
        self.used.clear();
        self.used.resize(CACHE_SLOTS, 0);
        self.tick = 0;
        self.sums.clear();
        self.sums.resize(CACHE_SLOTS * width, 0);
        self.known.clear();
        self.known.resize(CACHE_SLOTS, false);
        self.lex.clear();
        self.lex.resize(CACHE_SLOTS, WordEntry::default());
    }

    /// Marks `slot` the most recently used of its set.
    fn touch(&mut self, slot: usize) {
        self.tick = self.tick.wrapping_add(1);
        if self.tick == 0 {
            // After 2^32 words the count starts over: older stamps would look newer than every new one
            // and keep the words they mark for good, so every slot becomes "not used" at once.
            self.used.fill(0);
            self.tick = 1;
        }
        self.used[slot] = self.tick;
    }
}

fn cache_key(word: &str) -> Option<[u8; CACHED_WORD_BYTES + 1]> {
    let b = word.as_bytes();
    if b.is_empty() || b.len() > CACHED_WORD_BYTES {
        return None;
    }
    let mut key = [0u8; CACHED_WORD_BYTES + 1];
    key[..b.len()].copy_from_slice(b);
    key[CACHED_WORD_BYTES] = b.len() as u8;
    Some(key)
}

/// The first slot of the set of the word of `key`.
fn cache_set(key: &[u8; CACHED_WORD_BYTES + 1]) -> usize {
    let (a, b) = key.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    let x = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> (64 - (CACHE_SLOTS / CACHE_WAYS).trailing_zeros())) as usize * CACHE_WAYS
}

impl LinearModel {
    pub fn n_labels(&self) -> usize {
        self.labels.len()
    }

    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == name)
    }

    /// A training-time parameter, or `default` when the file has none of that name.
    pub fn param(&self, name: &str, default: f32) -> f32 {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map_or(default, |&(_, v)| v)
    }

    /// Tokenises `text` into `scratch` and scores it: `logits` gets one raw score per label. Returns the
    /// number of features read (0 means there was nothing to go on and the logits are the biases).
    pub fn logits(&self, text: &str, scratch: &mut Scratch, logits: &mut Vec<f32>) -> usize {
        scratch.tokens.read(text);
        self.logits_of_tokens(scratch, logits)
    }

    /// [`Self::logits`] for text already tokenised into `scratch.tokens`.
    pub fn logits_of_tokens(&self, scratch: &mut Scratch, logits: &mut Vec<f32>) -> usize {
        let l = self.n_labels();
        scratch.features.clear();
        scratch.acc.clear();
        scratch.acc.resize(l, 0);
        let mut n = 0;
        if self.caches_words() {
            n += self.add_word_features(scratch);
            if self.spec.reads_word_context() {
                // Each word's context was read through the word cache.
                self.spec.context_features_of(
                    &scratch.tokens,
                    &scratch.contexts,
                    &mut scratch.features,
                );
            } else {
                self.spec
                    .context_features(&scratch.tokens, &mut scratch.features);
            }
        } else {
            self.spec.features(&scratch.tokens, &mut scratch.features);
        }
        if let Some(lexicon) = &self.lexicon {
            if self.caches_words() {
                // The words' entries were read through the word cache.
                lexicon.features_of(
                    &scratch.lex,
                    &scratch.tokens,
                    self.spec.bits,
                    &mut scratch.features,
                );
            } else {
                lexicon.features(&scratch.tokens, self.spec.bits, &mut scratch.features);
            }
        }
        self.add_rows(&scratch.features, &mut scratch.acc);
        n += scratch.features.len();
        let norm = if n == 0 {
            0.0
        } else {
            self.scale / (n as f32).sqrt()
        };
        logits.clear();
        logits.extend(
            scratch
                .acc
                .iter()
                .zip(&self.bias)
                .map(|(&a, &b)| b + a as f32 * norm),
        );
        n
    }

    /// Whether this model's words have features of their own ([`FeatureSpec::word_features`]): then they
    /// are scored through the word cache.
    fn caches_words(&self) -> bool {
        self.spec.char_max > 0 || (self.spec.words && !self.spec.negation)
    }

    /// Adds the rows of every word's own features ([`FeatureSpec::word_features`]) to `scratch.acc`,
    /// through the word cache; returns how many features that was. Words too long to cache go to
    /// `scratch.features`.
    fn add_word_features(&self, scratch: &mut Scratch) -> usize {
        let l = self.n_labels();
        let Scratch {
            tokens,
            features,
            acc,
            words: cache,
            lex,
            contexts,
        } = scratch;
        let with_contexts = self.spec.reads_word_context();
        cache.prepare(self.cache_id.0, l, with_contexts);
        cache.known_words = 0;
        lex.clear();
        contexts.clear();
        let lexicon = self.lexicon.as_ref();
        let entry = |word: &str| lexicon.map_or_else(WordEntry::default, |x| x.entry_of(word));
        let mut n = 0;
        for word in tokens.words() {
            // The word's slot, or `None` for a word the cache does not hold: too long for a key (its
            // features go to `features`), or with sums too large for the cache (added to `acc` here).
            let slot = 'slot: {
                let Some(key) = cache_key(word) else {
                    self.spec.word_features(word, features);
                    break 'slot None;
                };
                let set = cache_set(&key);
                let ways = set..set + CACHE_WAYS;
                if let Some(slot) = ways.clone().find(|&s| cache.keys[s] == key) {
                    break 'slot Some(slot);
                }
                cache.grams.clear();
                self.spec.word_features(word, &mut cache.grams);
                cache.row.clear();
                cache.row.resize(l, 0);
                self.add_rows(&cache.grams, &mut cache.row);
                let fits = cache.grams.len() <= usize::from(u16::MAX)
                    && cache.row.iter().all(|&v| i16::try_from(v).is_ok());
                if !fits {
                    for (a, &v) in acc.iter_mut().zip(&cache.row) {
                        *a += v;
                    }
                    n += cache.grams.len();
                    break 'slot None;
                }
                let slot = ways.min_by_key(|&s| cache.used[s]).unwrap_or(set);
                cache.keys[slot] = key;
                cache.known[slot] = self.is_known(word);
                cache.lex[slot] = entry(word);
                if with_contexts {
                    cache.contexts[slot] = self.spec.word_context(word);
                }
                cache.counts[slot] = cache.grams.len() as u16;
                for (s, &v) in cache.sums[slot * l..][..l].iter_mut().zip(&cache.row) {
                    *s = v as i16;
                }
                Some(slot)
            };
            let Some(slot) = slot else {
                cache.known_words += usize::from(self.is_known(word));
                lex.push(entry(word));
                if with_contexts {
                    contexts.push(self.spec.word_context(word));
                }
                continue;
            };
            cache.touch(slot);
            n += usize::from(cache.counts[slot]);
            cache.known_words += usize::from(cache.known[slot]);
            lex.push(cache.lex[slot]);
            if with_contexts {
                contexts.push(cache.contexts[slot]);
            }
            for (a, &v) in acc.iter_mut().zip(&cache.sums[slot * l..][..l]) {
                *a += i32::from(v);
            }
        }
        n
    }

    /// Adds the weight rows of `features` to `acc`.
    fn add_rows(&self, features: &[u32], acc: &mut [i32]) {
        let l = self.n_labels();
        let weights = &self.weights;
        touch_rows(weights, l, features);
        // Measured (benches/README.md): fixed widths win for intent's 15 labels; sentiment's 3 and
        // language's 33 were no faster than the loop below.
        match l {
            9..=16 => accumulate::<16>(weights, l, features, acc),
            17..=32 => accumulate::<32>(weights, l, features, acc),
            _ => {
                for &b in features {
                    let row = &weights[b as usize * l..][..l];
                    for (a, &w) in acc.iter_mut().zip(row) {
                        *a += i32::from(w);
                    }
                }
            }
        }
    }

    /// The share of the words of the text last scored with `scratch` ([`Self::logits_of_tokens`]) that
    /// were seen in training (1.0 without a known-words set or words).
    pub fn known_share(&self, scratch: &Scratch) -> f32 {
        let words = scratch.tokens.len();
        if self.known_bits == 0 || words == 0 {
            return 1.0;
        }
        if self.caches_words() {
            // Counted by the word cache while scoring.
            return scratch.words.known_words as f32 / words as f32;
        }
        let known = scratch.tokens.words().filter(|w| self.is_known(w)).count();
        known as f32 / words as f32
    }

    fn is_known(&self, word: &str) -> bool {
        if self.known_bits == 0 {
            return false;
        }
        let b = known_word_bucket(word, self.known_bits) as usize;
        self.known[b / 64] >> (b % 64) & 1 == 1
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weights.len() + 4096);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        for w in self.spec.to_words() {
            put_u32(&mut out, w);
        }
        put_u32(&mut out, self.labels.len() as u32);
        for l in &self.labels {
            put_u32(&mut out, l.len() as u32);
            out.extend_from_slice(l.as_bytes());
        }
        out.extend_from_slice(&self.scale.to_le_bytes());
        for b in &self.bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.extend(self.weights.iter().map(|&w| w as u8));
        put_u32(&mut out, self.known_bits);
        for k in &self.known {
            out.extend_from_slice(&k.to_le_bytes());
        }
        put_u32(&mut out, self.params.len() as u32);
        for (name, v) in &self.params {
            put_u32(&mut out, name.len() as u32);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        let table = self.lexicon.as_ref().map_or(&[][..], Lexicon::table);
        put_u32(&mut out, table.len() as u32);
        out.extend(table.iter().map(|&v| v as u8));
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let err = |m: &str| ModelError(m.to_owned());
        if bytes.len() < 16 || &bytes[..4] != MAGIC {
            return Err(err("not a colloquy model (bad magic)"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(sum.try_into().map_err(|_| err("truncated"))?);
        if checksum(body) != stored {
            return Err(err("checksum mismatch (corrupt or truncated)"));
        }
        let mut r = Reader { bytes: body, at: 4 };
        let version = r.u32()?;
        // Version 1 is version 2 without the lexicon section.
        if version != VERSION && version != 1 {
            return Err(ModelError(format!(
                "format version {version}, this build reads {VERSION}"
            )));
        }
        let mut words = [0u32; 7];
        for w in &mut words {
            *w = r.u32()?;
        }
        let spec = FeatureSpec::from_words(words);
        if !(8..=24).contains(&spec.bits) {
            return Err(ModelError(format!(
                "{} hash bits is out of range",
                spec.bits
            )));
        }
        let n = r.u32()? as usize;
        if n == 0 || n > 1024 {
            return Err(ModelError(format!("{n} labels is out of range")));
        }
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            let s = std::str::from_utf8(r.take(len)?).map_err(|_| err("label is not UTF-8"))?;
            labels.push(s.to_owned());
        }
        let scale = r.f32()?;
        let bias = (0..n).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let weights = r
            .take((1usize << spec.bits) * n)?
            .iter()
            .map(|&b| b as i8)
            .collect();
        let known_bits = r.u32()?;
        if known_bits > 28 {
            return Err(ModelError(format!(
                "{known_bits} known-word bits is out of range"
            )));
        }
        let known_words = if known_bits == 0 {
            0
        } else {
            (1usize << known_bits) / 64
        };
        let known = (0..known_words)
            .map(|_| {
                r.take(8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n_params = r.u32()? as usize;
        if n_params > 64 {
            return Err(ModelError(format!("{n_params} parameters is out of range")));
        }
        let mut params = Vec::with_capacity(n_params);
        for _ in 0..n_params {
            let len = r.u32()? as usize;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| err("parameter name is not UTF-8"))?;
            params.push((name.to_owned(), r.f32()?));
        }
        let lexicon = if version == 1 {
            None
        } else {
            match r.u32()? as usize {
                0 => None,
                n => {
                    let table = r.take(n)?.iter().map(|&b| b as i8).collect();
                    Some(Lexicon::from_table(table).ok_or_else(|| {
                        ModelError(format!(
                            "a lexicon of {n} entries; this build reads {}",
                            1 << LEXICON_BITS
                        ))
                    })?)
                }
            }
        };
        if r.at != body.len() {
            return Err(err("trailing bytes"));
        }
        Ok(Self {
            spec,
            labels,
            scale,
            bias,
            weights,
            known_bits,
            known,
            params,
            lexicon,
            cache_id: CacheId::default(),
        })
    }
}

/// Softmax in place over the entries where `active` is true (all when `None`); others become 0.
pub fn softmax(logits: &mut [f32], active: Option<&[bool]>) {
    let on = |i: usize| active.is_none_or(|a| a[i]);
    let max = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| on(i))
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (i, v) in logits.iter_mut().enumerate() {
        if on(i) {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v = 0.0;
        }
    }
    // Not when every entry is masked off (the sum is 0); NaN logits make every probability NaN.
    if sum != 0.0 {
        for v in logits.iter_mut() {
            *v /= sum;
        }
    }
}

/// The index and value of the largest entry (the first on ties).
pub fn argmax(values: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &v) in values.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| ModelError("truncated".to_owned()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_bits(self.u32()?))
    }
}

/// Reads one byte at each end of every row of `features` before any is summed. The rows are random
/// reads of a table of megabytes, mostly from memory: summing a row takes enough instructions that the
/// processor used to look ahead only two or three rows, waiting on each in turn, while this loop of a few
/// instructions per row has them all on their way at once (benches/README.md: +20% for `language()`).
fn touch_rows(weights: &[i8], l: usize, features: &[u32]) {
    let mut touched = 0i8;
    for &b in features {
        let start = b as usize * l;
        touched ^= weights.get(start).copied().unwrap_or(0)
            ^ weights.get(start + l - 1).copied().unwrap_or(0);
    }
    // Keeps the reads: nothing else uses what they read.
    std::hint::black_box(touched);
}

/// Adds the weight rows of `features` to `acc` (`l` labels) with a fixed width `N >= l`: the compiler
/// turns a fixed-width row into a few vector adds, where a loop over `l` stayed scalar. A row is read `N`
/// wide (the bytes past `l` belong to the next rows and land in lanes that are dropped); rows too close to
/// the end of the table for that are added `l` wide.
fn accumulate<const N: usize>(weights: &[i8], l: usize, features: &[u32], acc: &mut [i32]) {
    let mut wide = [0i32; N];
    let last_wide = weights.len().saturating_sub(N);
    for &b in features {
        let start = b as usize * l;
        if start <= last_wide
            && let Ok(row) = <&[i8; N]>::try_from(&weights[start..start + N])
        {
            for (a, &w) in wide.iter_mut().zip(row) {
                *a += i32::from(w);
            }
        } else {
            for (a, &w) in wide.iter_mut().zip(&weights[start..start + l]) {
                *a += i32::from(w);
            }
        }
    }
    for (a, &w) in acc[..l].iter_mut().zip(&wide[..l]) {
        *a += w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LinearModel {
        let spec = FeatureSpec {
            bits: 8,
            char_min: 1,
            char_max: 2,
            words: true,
            bigrams: false,
            negation: false,
            signals: true,
        };
        let weights = (0..256 * 2).map(|i| (i % 7) as i8 - 3).collect();
        LinearModel {
            spec,
            labels: vec!["a".into(), "b".into()],
            scale: 0.5,
            bias: vec![0.1, -0.1],
            weights,
            known_bits: 8,
            known: vec![1, 2, 3, 4],
            params: vec![("tau".into(), 0.25)],
            lexicon: Some({
                let mut l = Lexicon::default();
                l.set("ab", 1.0);
                l
            }),
            cache_id: CacheId::default(),
        }
    }

    #[test]
    fn wide_rows_add_up_like_narrow_ones() {
        for l in [1usize, 2, 3, 4, 5, 8, 15, 16, 17, 33, 40, 41, 64, 65] {
            let buckets = 64usize;
            let weights: Vec<i8> = (0..buckets * l)
                .map(|i| ((i * 37 + l) % 255) as i8)
                .collect();
            // Every bucket, the last ones (too close to the end for a wide read) included, some twice.
            let features: Vec<u32> = (0..buckets as u32).chain([buckets as u32 - 1, 0]).collect();
            let mut want = vec![0i32; l];
            for &b in &features {
                for (a, &w) in want.iter_mut().zip(&weights[b as usize * l..][..l]) {
                    *a += i32::from(w);
                }
            }
            let mut got = vec![0i32; l];
            match l {
                0..=4 => accumulate::<4>(&weights, l, &features, &mut got),
                5..=8 => accumulate::<8>(&weights, l, &features, &mut got),
                9..=16 => accumulate::<16>(&weights, l, &features, &mut got),
                17..=32 => accumulate::<32>(&weights, l, &features, &mut got),
                33..=40 => accumulate::<40>(&weights, l, &features, &mut got),
                41..=64 => accumulate::<64>(&weights, l, &features, &mut got),
                _ => got.clone_from(&want),
            }
            assert_eq!(got, want, "{l} labels");
        }
    }

    #[test]
    fn round_trip() {
        let m = tiny();
        let bytes = m.to_bytes();
        let back = LinearModel::from_bytes(&bytes).expect("reads back");
        assert_eq!(back.labels, m.labels);
        assert_eq!(back.weights, m.weights);
        assert_eq!(back.known, m.known);
        assert_eq!(back.spec, m.spec);
        assert_eq!(back.param("tau", 0.0), 0.25);
        assert_eq!(back.param("other", 1.5), 1.5);
        assert_eq!(back.lexicon, m.lexicon);
    }

    #[test]
    fn reads_version_1_files() {
        // A version 1 file is a version 2 file without the lexicon section (its entry count, 0 here).
        let m = LinearModel {
            lexicon: None,
            ..tiny()
        };
        let v2 = m.to_bytes();
        let mut v1 = v2[..v2.len() - 12].to_vec();
        v1[4..8].copy_from_slice(&1u32.to_le_bytes());
        let sum = checksum(&v1);
        v1.extend_from_slice(&sum.to_le_bytes());
        let back = LinearModel::from_bytes(&v1).expect("a version 1 file");
        assert_eq!((back.weights, back.lexicon), (m.weights, None));
    }

    #[test]
    fn corrupt_files_are_errors() {
        let bytes = tiny().to_bytes();
        for cut in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                LinearModel::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        let e = LinearModel::from_bytes(&flipped).expect_err("flipped bit");
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn pooled_scratch_is_reused_per_model() {
        let a = tiny();
        let b = tiny();
        let mut logits = Vec::new();
        let mut first = Scratch::pooled(&a);
        a.logits("ab ba", &mut first, &mut logits);
        let want = logits.clone();
        let mut other = Scratch::pooled(&b);
        b.logits("ab", &mut other, &mut logits);
        drop(first);
        drop(other);
        // Both went back; asking for `a`'s gets the one whose cache holds `a`'s words.
        let mut again = Scratch::pooled(&a);
        assert_eq!(again.words.owner, a.cache_id.0);
        a.logits("ab ba", &mut again, &mut logits);
        assert_eq!(logits, want);
        // A scratch last used by `b` scores `a`'s text as a fresh one would.
        let mut from_b = Scratch::pooled(&b);
        a.logits("ab ba", &mut from_b, &mut logits);
        assert_eq!(logits, want);
    }

    /// The scores of [`LinearModel::logits`] computed the plain way: every feature's row added to the sum.
    fn uncached_logits(m: &LinearModel, text: &str) -> Vec<f32> {
        let mut tokens = Tokens::new();
        tokens.read(text);
        let mut features = Vec::new();
        m.spec.features(&tokens, &mut features);
        if let Some(lexicon) = &m.lexicon {
            lexicon.features(&tokens, m.spec.bits, &mut features);
        }
        let l = m.n_labels();
        let mut acc = vec![0i32; l];
        for &b in &features {
            for (a, &w) in acc.iter_mut().zip(&m.weights[b as usize * l..][..l]) {
                *a += i32::from(w);
            }
        }
        let norm = if features.is_empty() {
            0.0
        } else {
            m.scale / (features.len() as f32).sqrt()
        };
        acc.iter()
            .zip(&m.bias)
            .map(|(&a, &b)| b + a as f32 * norm)
            .collect()
    }

    #[test]
    fn word_cache_gives_the_plain_scores() {
        let texts = [
            "where is my order",
            "WHERE IS MY ORDER??? soooo late",
            "where is my order",
            "Wo ist meine Bestellung? Überweisung läuft",
            "supercalifragilisticexpialidocious antidisestablishmentarianism",
            "not good, never again :( 😡",
            "",
            "¿Dónde está mi pedido?",
            "我的订单在哪里",
            "a b c d e f g h i j k l m n o p",
        ];
        let mut models: Vec<LinearModel> = [
            crate::builtin::language().map(|d| d.model()),
            crate::builtin::sentiment().map(|s| s.model()),
            crate::builtin::intent().map(|s| s.model()),
        ]
        .into_iter()
        .map(|m| m.expect("built-in model").clone())
        .collect();
        models.push(tiny());
        let mut logits = Vec::new();
        let mut shared = Scratch::default();
        for m in &models {
            // Twice over: the second pass reads every word from the cache.
            for text in texts.iter().chain(&texts) {
                m.logits(text, &mut shared, &mut logits);
                assert_eq!(logits, uncached_logits(m, text), "{text:?}");
            }
        }
    }

    #[test]
    fn word_cache_evicts_without_changing_scores() {
        // Three times more distinct words than the cache has slots, drawn at random so that words come
        // back after others have taken their slots: every score is still the uncached one.
        let word = |mut i: u64| {
            let mut w = String::new();
            loop {
                w.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
                if i == 0 {
                    break w;
                }
            }
        };
        let model = crate::builtin::intent().expect("built-in model").model();
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let words: Vec<String> = (0..6)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    word(x % (3 * CACHE_SLOTS as u64))
                })
                .collect();
            let text = words.join(" ");
            model.logits(&text, &mut scratch, &mut logits);
            assert_eq!(logits, uncached_logits(model, &text), "{text:?}");
        }
    }

    #[test]
    fn word_cache_makes_room_with_the_least_recently_used_word() {
        let model = crate::builtin::intent().expect("built-in model").model();
        // Five words of one set (of four slots).
        let key = |w: &str| cache_key(w).expect("short word");
        let first = cache_set(&key("aa"));
        let mut words = Vec::new();
        let mut i = 0u32;
        while words.len() < 5 {
            let mut w = String::new();
            let mut n = i;
            loop {
                w.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
                if n == 0 {
                    break;
                }
            }
            if cache_set(&key(&w)) == first && w != "aa" {
                words.push(w);
            }
            i += 1;
        }
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        let cached = |s: &Scratch, w: &str| s.words.keys.contains(&key(w));
        for w in &words[..4] {
            model.logits(w, &mut scratch, &mut logits);
        }
        // The first word is used again: the second is now the least recently used.
        model.logits(&words[0], &mut scratch, &mut logits);
        model.logits(&words[4], &mut scratch, &mut logits);
        assert!(cached(&scratch, &words[0]));
        assert!(
            !cached(&scratch, &words[1]),
            "the least recently used word stays"
        );
        for w in &words[2..] {
            assert!(cached(&scratch, w), "{w} was evicted");
        }
    }

    #[test]
    fn word_cache_stamps_start_over_without_losing_words() {
        let model = crate::builtin::intent().expect("built-in model").model();
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        // Stamped just before the count starts over, and not used after it.
        model.logits("where", &mut scratch, &mut logits);
        scratch.words.tick = u32::MAX - 5;
        model.logits("refund cancel invoice", &mut scratch, &mut logits);
        for _ in 0..3 {
            model.logits("where is my order", &mut scratch, &mut logits);
            assert_eq!(logits, uncached_logits(model, "where is my order"));
        }
        assert!(scratch.words.tick < 16, "the count started over");
        assert!(scratch.words.used.iter().all(|&u| u <= scratch.words.tick));
    }

    #[test]
    fn softmax_respects_mask() {
        let mut v = vec![1.0, 2.0, 3.0];
        softmax(&mut v, Some(&[true, true, false]));
        assert_eq!(v[2], 0.0);
        assert!((v[0] + v[1] - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&v).0, 1);
    }
}
