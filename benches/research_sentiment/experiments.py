#!/usr/bin/env python3
"""Research for issue 20 (English sentiment at least VADER-level): which cheap additions to the built-in
hashed-n-gram linear sentiment model carry, measured in Python before anything is built in Rust.

Usage:
  python3 -m venv /tmp/research-venv
  /tmp/research-venv/bin/pip install scikit-learn scipy numpy vaderSentiment==3.3.2 afinn textblob
  /tmp/research-venv/bin/python benches/research_sentiment/experiments.py ../shared/data [--only NAME,...]
      [--quick] [--out benches/research_sentiment/results.json]

What it does (one run reproduces REPORT.md's tables, ~70-90 minutes on one core for every variant; --only picks some):
* Rebuilds the training rows of the Rust recipe (scripts/models/prepare_data.py + recipes/sentiment.rs): XLM-T
  train of 8 languages (English: only the 1,430 rows that are TweetEval val tweets, as prepare_data keeps),
  the VADER ground-truth tweets thresholded at +-0.5, TweetEval emotion train+val as polar rows; the same
  class/language weights (en x1.5, VADER tweets x2) and the VADER-lexicon + hand-written-lexicon prior.
  One change: the VADER tweets are split by a hash of their text (1 in 4 held out) so they can be scored.
* A Python proxy of the Rust model: the same tokeniser rules (tokens.rs), the same features (features.rs:
  char 3-5-grams, words, negated words, bigrams, signals) hashed into 2^18 buckets (sklearn's murmur hash,
  not FNV: same collision rate, different buckets), values count/sqrt(total), and a multinomial logistic
  regression fitted by L-BFGS with an L2 pull towards the lexicon prior (the Rust trainer runs 8 AdaGrad
  epochs from that prior; the L2 stands in for that early stop).
* Variants on top of it (rule features, data-derived lexicon, emoji weak labels, calibration, more data).
* Part 2 (the `emb` variants): a dense block appended to the hashed features, the mean of the message's
  known words' static vectors (distilled from all-MiniLM-L6-v2 by distill_wordvec.py; `--wordvec` names
  its output dir, default /tmp/minilm), scaled so an English training row's block has mean norm 1 (x scale).
  The dense columns get plain L2 (no prior). Needs `pip install onnxruntime tokenizers` only to distil.
* Scores: macro-F1 on development rows never trained on:
    xlmt_en   XLM-T English val (324, balanced)
    tweeteval TweetEval sentiment val (2,000): 2-fold cross-fitted, i.e. each half is scored by a model whose
              training rows exclude that half (1,430 of the 2,000 are XLM-T English train rows)
    vader     the held-out quarter of the VADER tweets (labels: mean valence < -0.5 neg, > 0.5 pos)
    sst2      SST-2 dev (872 sentences, 2 classes): forced binary (pos if P(pos) > P(neg)); the peers:
              score >= 0 -> pos. `sst2_3w` counts a neutral answer as a miss (macro-F1 over pos/neg).
    ar, hi, mean8: XLM-T val of Arabic, Hindi and the mean over the 8 languages.
  Peers: VADER (compound +-0.05), AFINN (sign of the score, emoticons on), TextBlob (sign of polarity).
No test split is ever opened (the same forbidden patterns as prepare_data.py are refused).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: the machine is shared
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import fnmatch
import hashlib
import json
import math
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.feature_extraction import FeatureHasher
from sklearn.metrics import f1_score

BITS = 18
LABELS = ["neg", "neu", "pos"]
LIDX = {l: i for i, l in enumerate(LABELS)}
XLMT = {"arabic": "ar", "english": "en", "french": "fr", "german": "de", "hindi": "hi", "italian": "it",
        "portuguese": "pt", "spanish": "es"}
SENT3 = {"0": "neg", "1": "neu", "2": "pos"}
FORBIDDEN = ["sentiment/tweeteval*/test_*", "sentiment/xlmt*/*/test_*", "*sentiment140*/*test*",
             "*testdata.manual*"]
KNOWN_TEST_DUPLICATES = {"a good head and a good heart are always a formidable combination nelson mandela"}

DATA = None


def read(rel):
    r = rel.lower()
    if any(fnmatch.fnmatch(r, p) for p in FORBIDDEN):
        raise SystemExit("refusing to read a test split: " + rel)
    return (DATA / rel).read_text(encoding="utf-8")


def lines(rel):
    t = read(rel).split("\n")
    return t[:-1] if t and t[-1] == "" else t


def clean(text):
    return re.sub(r"\s+", " ", re.sub(r"[\t\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]", " ", text)).strip()


def norm_exact(text):
    t = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w]+", " ", t).split())


def hfold(text, k, salt="split"):
    return int(hashlib.md5((salt + "\x1f" + norm_exact(text)).encode()).hexdigest()[:8], 16) % k


# ----------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------
class Row:
    __slots__ = ("label", "lang", "text", "src", "w")

    def __init__(self, label, lang, text, src, w=1.0):
        self.label, self.lang, self.text, self.src, self.w = label, lang, text, src, w


def aligned(d, split):
    t = lines(f"{d}/{split}_text.txt")
    l = lines(f"{d}/{split}_labels.txt")
    assert len(t) == len(l), d
    return [(SENT3[a.strip()], b) for a, b in zip(l, t)]


def vader_file(name):
    out = []
    for line in lines(f"sentiment/vader_icwsm2014_groundtruth/{name}"):
        parts = line.rstrip("\r").split("\t", 2)
        if len(parts) != 3:
            continue
        v = float(parts[1])
        out.append(("neg" if v < -0.5 else "pos" if v > 0.5 else "neu", parts[2]))
    return out


def load():
    xl = {}
    for folder, lang in XLMT.items():
        for split in ("train", "val"):
            xl[(lang, split)] = aligned(f"sentiment/xlmt_multilingual_sentiment/{folder}", split)
    tv = aligned("sentiment/tweeteval_sentiment", "val")
    tv_norm = {norm_exact(t) for _, t in tv}
    # prepare_data: English XLM-T train rows not in TweetEval val may be TweetEval test rows: dropped.
    suspect = {norm_exact(t) for _, t in xl[("en", "train")] if norm_exact(t) not in tv_norm}
    xl[("en", "train")] = [r for r in xl[("en", "train")] if norm_exact(r[1]) in tv_norm]
    in_xlmt = {norm_exact(t) for _, t in xl[("en", "train")]} | {norm_exact(t) for _, t in xl[("en", "val")]}
    clean246 = {norm_exact(t) for _, t in tv if norm_exact(t) not in in_xlmt}
    blocked = clean246 | KNOWN_TEST_DUPLICATES | suspect
    vt = vader_file("tweets_GroundTruth.txt")
    vader_val = [(l, t) for l, t in vt if hfold(t, 4) == 0]
    blocked |= {norm_exact(t) for _, t in vader_val}
    train = []
    for (lang, split), rows in sorted(xl.items()):
        if split != "train":
            continue
        val = {norm_exact(t) for _, t in xl[(lang, "val")]}
        train += [Row(l, lang, t, "xlmt") for l, t in rows if norm_exact(t) not in val]
    train += [Row(l, "en", t, "vader") for l, t in vt if hfold(t, 4) != 0]
    emap = {"0": "neg", "1": "pos", "2": "pos", "3": "neg"}
    for split in ("train", "val"):
        d = "sentiment/tweeteval_emotion"
        for l, t in zip(lines(f"{d}/{split}_labels.txt"), lines(f"{d}/{split}_text.txt")):
            train.append(Row(emap[l.strip()], "en", t, "emotion"))
    seen, out = set(), []
    for r in train:
        r.text = clean(r.text)
        k = (r.label, r.lang, r.text)
        if not r.text or norm_exact(r.text) in blocked or k in seen:
            continue
        seen.add(k)
        out.append(r)
    dev = {
        "xlmt": [(l, lang, t) for (lang, s), rows in sorted(xl.items()) if s == "val" for l, t in rows],
        "tweeteval": [(l, "en", t) for l, t in tv],
        "vader": [(l, "en", t) for l, t in vader_val],
        "sst2": [],
    }
    for line in lines("sentiment/sst2_glue/dev.tsv")[1:]:
        t, l = line.rsplit("\t", 1)
        dev["sst2"].append(("pos" if l.strip() == "1" else "neg", "en", t.strip()))
    return out, dev


def extra_sst2():
    rows = []
    for line in lines("sentiment/sst2_glue/train.tsv")[1:]:
        t, l = line.rsplit("\t", 1)
        rows.append(Row("pos" if l.strip() == "1" else "neg", "en", t.strip(), "sst2"))
    return rows


def extra_vader_other():
    rows = []
    for name in ("amazonReviewSnippets_GroundTruth.txt", "movieReviewSnippets_GroundTruth.txt",
                 "nytEditorialSnippets_GroundTruth.txt"):
        rows += [Row(l, "en", clean(t), "vother") for l, t in vader_file(name)]
    return rows


# Emoticons and emoji whose polarity labels a chat message (our own short list, not a lexicon's text).
WEAK_POS = [":)", ":-)", ":d", ":-d", ";)", ";-)", "=)", ":]", "<3", "xd", ":p", ":-p", "^^", ":3",
            "😀", "😃", "😄", "😁", "😆", "😂", "🤣", "😊", "😍", "🥰", "😘", "🙂", "😎", "👍", "❤", "💕",
            "🎉", "😉", "☺", "♥", "💖", "🙌", "👏", "😅"]
WEAK_NEG = [":(", ":-(", ":'(", ":/", ":-/", ":[", ">:(", "</3", "-_-",
            "😢", "😭", "😞", "😔", "😟", "😠", "😡", "🤬", "👎", "💔", "☹", "🙁", "😩", "😫", "😒", "😤",
            "😣", "😖", "🤮", "😕"]


def weak_rows(limit_per_class=6000):
    """Chit-chat messages (unlabelled) with only positive or only negative emoticons/emoji, those marks
    removed from the text; class-balanced to at most `limit_per_class` each."""
    d = json.loads(read("dialogues/chitchat_byu/dataset.json"))
    msgs = [m["text"] for c in d.values() for turn in c["messages"] for m in turn]
    pos_ascii = {e for e in WEAK_POS if e.isascii()}
    neg_ascii = {e for e in WEAK_NEG if e.isascii()}
    pos_sym = {e for e in WEAK_POS if not e.isascii()}
    neg_sym = {e for e in WEAK_NEG if not e.isascii()}
    out = {"pos": [], "neg": []}
    for m in msgs:
        toks = m.split()
        p = sum(t.lower() in pos_ascii for t in toks) + sum(ch in pos_sym for ch in m)
        n = sum(t.lower() in neg_ascii for t in toks) + sum(ch in neg_sym for ch in m)
        if (p > 0) == (n > 0):
            continue
        text = " ".join(t for t in toks if t.lower() not in pos_ascii | neg_ascii)
        text = "".join(ch for ch in text if ch not in pos_sym | neg_sym).strip()
        if len(text.split()) < 2:
            continue
        out["pos" if p else "neg"].append(text)
    rows = []
    for lab, texts in out.items():
        texts = sorted(set(texts), key=lambda t: hfold(t, 1 << 30, "weak"))[:limit_per_class]
        rows += [Row(lab, "en", t, "weak") for t in texts]
    return rows, {k: len(v) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------------
# Tokeniser: tokens.rs in Python (words, per-word flags, signals)
# ----------------------------------------------------------------------------------------------------
EMOTICONS = [":)", ":-)", ":]", "=)", ":d", ":-d", "xd", ";)", ";-)", ":p", ":-p", "<3", ":(", ":-(", ":[",
             ":'(", ":/", ":-/", ":|", ":o", "^^", ":3", "</3", ">:(", "-_-"]
EMOSET = set(EMOTICONS)
CLAUSE_PUNCT = set(".,;:!?()\"[]…¡¿؟،؛।")


def is_word_char(c):
    if c.isalpha():
        return True
    u = ord(c)
    if (0x0300 <= u <= 0x036F or 0x0483 <= u <= 0x0489 or 0x0591 <= u <= 0x05C7 or 0x0610 <= u <= 0x061A
            or 0x064B <= u <= 0x065F or u == 0x0670 or 0x06D6 <= u <= 0x06ED or u == 0x0E31
            or 0x0E34 <= u <= 0x0E3A or 0x0E47 <= u <= 0x0E4E or 0x200C <= u <= 0x200D
            or 0x3099 <= u <= 0x309A or 0xFE20 <= u <= 0xFE2F):
        return True
    return 0x0900 <= u <= 0x0DFF and not c.isnumeric() and u not in (0x0964, 0x0965, 0x0970)


def is_symbol(c):
    u = ord(c)
    return (u >= 0x2190 and not c.isalnum() and not c.isspace() and not (0xFE00 <= u <= 0xFE0F)
            and u != 0x200D and not (0xE0020 <= u <= 0xE007F) and not (0x3000 <= u <= 0x303F)
            and not (0xFF00 <= u <= 0xFF0F))


def is_link(raw):
    r = raw.lower()
    return (r.startswith("http://") or r.startswith("https://") or r.startswith("www.") or r.startswith("@")
            or ("@" in r and "." in r))


class Tok:
    __slots__ = ("words", "brk", "shout", "long", "symbols", "emoticons", "excl", "quest")


def tokenize(text):
    """tokens.rs: words (lowercase, letter runs >= 3 cut to 2, apostrophes inside words kept), emoji and
    other symbols, emoticons, ! and ? counts, shouted and elongated words. Adds what the Rust tokeniser
    does not record yet: per word, whether a clause break (punctuation, emoji, emoticon) came before it."""
    t = Tok()
    t.words, t.brk, t.shout, t.long, t.symbols, t.emoticons = [], [], [], [], [], []
    t.excl = t.quest = 0
    pending_break = False
    for raw in text.split():
        if raw.isascii() and len(raw) <= 4 and raw.lower() in EMOSET:
            t.emoticons.append(raw.lower())
            pending_break = True
            continue
        if is_link(raw):
            continue
        buf, letters, upper, last, run, elong = [], 0, 0, None, 0, False
        n = len(raw)

        def end():
            nonlocal buf, letters, upper, last, run, elong, pending_break
            if buf:
                t.words.append("".join(buf))
                t.brk.append(pending_break)
                t.shout.append(letters >= 2 and upper == letters)
                t.long.append(elong)
                pending_break = False
            buf, letters, upper, last, run, elong = [], 0, 0, None, 0, False

        for i, c in enumerate(raw):
            apos = c in "'’" and letters > 0 and i + 1 < n and raw[i + 1].isalpha()
            if is_word_char(c) or apos:
                if apos:
                    c = "'"
                if c.isupper():
                    upper += 1
                for l in c.lower():
                    if l == last:
                        run += 1
                    else:
                        run, last = 1, l
                    if run >= 3:
                        elong = True
                        continue
                    buf.append(l)
                letters += 1
                continue
            end()
            if c in "!¡":
                t.excl += 1
            elif c in "?¿؟":
                t.quest += 1
            elif is_symbol(c):
                t.symbols.append(c)
            if c in CLAUSE_PUNCT or is_symbol(c):
                pending_break = True
        end()
    return t


NEGATIONS = set("""not no never nothing nobody none neither nor cannot don't dont doesn't doesnt didn't didnt isn't
isnt wasn't wasnt aren't won't wont can't cant couldn't wouldn't shouldn't haven't hasn't ain't nunca nada nadie
ni jamás tampoco não nao nem ninguém ne pas jamais rien personne nicht kein keine keinen keiner nie niemals nichts
non mai niente nessuno لا ما لم لن ليس مش مو nahi nahin nhi nai mat नहीं नही मत न""".split())
# Extra English negators for the clause-scope variant (the 3-word rule's list lacks them).
NEG_EXTRA = set("without aren arent weren't werent hadn't hadnt mustn't needn't isnt couldnt wouldnt shouldnt "
                "havent hasnt aint doesnt didnt never neither nor".split())
INTENSIFIERS = set("very really so too extremely totally absolutely super incredibly completely utterly highly "
                   "truly most such quite hugely enormously especially exceptionally remarkably seriously "
                   "insanely ridiculously damn fucking freaking hella way sooo soo mega ultra deeply".split())
DAMPENERS = set("slightly somewhat barely hardly kinda sorta little bit fairly marginally occasionally "
                "partly scarcely less rather".split())
CONTRAST = {"but", "however", "yet", "although", "though", "pero", "mais", "aber", "ma", "mas", "لكن", "lekin",
            "magar", "लेकिन", "मगर"}
# Our own 40-odd emoji/emoticon polarities (hand-picked by meaning, not copied from a lexicon).
EMO_POL = {**{e: 1 for e in WEAK_POS}, **{e: -1 for e in WEAK_NEG}, ":|": 0, ":o": 0}


# ----------------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------------
_CHAR_CACHE = {}


def char_grams(word, lo=3, hi=5):
    key = (word, lo, hi)
    g = _CHAR_CACHE.get(key)
    if g is None:
        w = "\x01" + word[:64] + "\x01"
        g = ["C" + w[s:s + n] for s in range(len(w)) for n in range(lo, hi + 1) if s + n <= len(w)]
        if len(_CHAR_CACHE) < 3_000_000:
            _CHAR_CACHE[key] = g
    return g


AR_NORM = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ـ": None,
                         **{chr(c): None for c in range(0x064B, 0x0660)}, "ؤ": "و", "ئ": "ي"})


def skeleton(word):
    """Romanised Hindi spelling variants: vowels and h dropped, doubled letters merged (pyaar/pyar -> pyr)."""
    s = re.sub(r"[aeiouyh']", "", word)
    return re.sub(r"(.)\1", r"\1", s)


def features(text, opt, lex=None):
    """Feature strings of one text for the options `opt` (a dict of flags); `lex` maps a word to a polarity
    in {-2..2} (the data-derived lexicon)."""
    t = tokenize(text)
    words = t.words
    if opt.get("ar_norm"):
        words = [w.translate(AR_NORM) if any("\u0600" <= c <= "\u06ff" for c in w) else w for w in words]
    out = []
    cl, ch = opt.get("chars", (3, 5))
    scope = opt.get("neg_scope", "3")  # "3": the Rust rule (3 words); "clause": to the clause end; "none"
    neg_left = 0
    negated = [False] * len(words)
    after_but = [False] * len(words)
    seen_but = False
    for i, w in enumerate(words):
        if scope == "clause" and (t.brk[i] or w in CONTRAST):
            neg_left = 0
        if w in CONTRAST:
            seen_but = True
        after_but[i] = seen_but and w not in CONTRAST
        isneg = w in NEGATIONS or (scope == "clause" and (w in NEG_EXTRA or w.endswith("n't")))
        negated[i] = neg_left > 0 and not isneg
        if isneg and scope != "none":
            neg_left = 3 if scope == "3" else 99
        elif neg_left > 0 and scope == "3":
            neg_left -= 1
    for i, w in enumerate(words):
        if ch:
            out += char_grams(w, cl, ch)
        fam = "N" if negated[i] else "W"
        wf = fam + w
        out.append(wf)
        if i > 0:
            out.append("B" + words[i - 1] + "\x00" + w)
        if opt.get("bigram_neg") and negated[i] and i > 0:
            pass
        if opt.get("intens") and i > 0:
            prev = words[i - 1]
            if prev in INTENSIFIERS:
                out.append(wf)  # the word once more: "very good" weighs good twice
            elif prev in DAMPENERS:
                out.append("D" + w)
        if opt.get("but") and after_but[i]:
            out.append(wf)  # the clause after "but" counts twice
        if opt.get("amplify"):
            if t.shout[i] and len(w) > 1:
                out.append(wf)
            if t.long[i]:
                out.append(wf)
        if opt.get("skeleton") and w.isascii() and len(w) > 2:
            out.append("K" + ("N" if negated[i] else "") + skeleton(w))
    if opt.get("signals", True):
        out += ["S" + c for c in t.symbols]
        out += ["E" + e for e in t.emoticons]
        out += ["G!"] * min(t.excl, 3) + ["G?"] * min(t.quest, 3)
        out += ["GSHOUT"] * min(sum(t.shout), 3) + ["GLONG"] * min(sum(t.long), 3)
    if opt.get("emo_pol"):
        pol = sum(EMO_POL.get(e, 0) for e in t.emoticons) + sum(EMO_POL.get(c, 0) for c in t.symbols)
        if pol:
            out += ["PEMO+" if pol > 0 else "PEMO-"] * min(abs(pol), 3)
            if t.excl:
                out.append("PEMO!" + ("+" if pol > 0 else "-"))
    if lex is not None:
        s = 0
        npos = nneg = 0
        for i, w in enumerate(words):
            v = lex.get(w, 0)
            if v:
                if negated[i]:
                    v = -v
                if opt.get("intens") and i > 0 and words[i - 1] in INTENSIFIERS:
                    v *= 1.5
                if opt.get("but") and seen_but:
                    v *= 1.5 if after_but[i] else 0.5
                s += v
                if v > 0:
                    npos += 1
                else:
                    nneg += 1
        out += ["LP"] * min(npos, 3) + ["LN"] * min(nneg, 3)
        b = max(-4, min(4, int(round(s))))
        out.append("LS%d" % b)
        if t.excl and b:
            out.append("LS!%s" % ("+" if b > 0 else "-"))
    return out


HASHER = FeatureHasher(n_features=1 << BITS, input_type="string", alternate_sign=False)


def matrix(texts, opt, lex=None):
    m = HASHER.transform(features(t, opt, lex) for t in texts).tocsr().astype(np.float64)
    tot = np.asarray(m.sum(axis=1)).ravel()
    tot[tot == 0] = 1.0
    m = sp.diags(1.0 / np.sqrt(tot)) @ m
    if opt.get("emb"):
        m = sp.hstack([m, sp.csr_matrix(emb_block(texts, opt["emb"]))]).tocsr()
    return m


# ----------------------------------------------------------------------------------------------------
# Part 2: static word vectors distilled from all-MiniLM-L6-v2 (distill_wordvec.py) as dense columns
# ----------------------------------------------------------------------------------------------------
WORDVEC = Path("/tmp/minilm")  # distill_wordvec.py's output dir (--wordvec)
EMB_NORM_TEXTS = []  # English training texts: the dense block's scale is set on them (Runner.__init__)
_EMB = {}


def emb_table(dims, sif):
    key = (dims, sif)
    if key not in _EMB:
        words = (WORDVEC / "words.txt").read_text(encoding="utf-8").split("\n")[:-1]
        T = np.load(WORDVEC / ("wordvec_%d%s.npy" % (dims, "_sif" if sif else ""))).astype(np.float64)
        assert len(words) == len(T)
        index = {w: i for i, w in enumerate(words)}
        raw = _emb_mean([tokenize(t).words for t in EMB_NORM_TEXTS], index, T)
        # One scale for the whole table: the mean message vector of an English training row has norm 1, as
        # the hashed block's rows (count/sqrt(total) over mostly distinct features) have about norm 1.
        T = T / max(np.linalg.norm(raw, axis=1).mean(), 1e-9)
        _EMB[key] = (index, T)
    return _EMB[key]


def _emb_mean(wordlists, index, T):
    out = np.zeros((len(wordlists), T.shape[1]))
    for r, ws in enumerate(wordlists):
        ids = [index[w] for w in ws if w in index]
        if ids:
            out[r] = T[ids].mean(axis=0)
    return out


def emb_block(texts, emb):
    """Dense columns of `texts`: scale x the mean of their known words' vectors (zeros if none)."""
    dims, sif, scale = emb
    index, T = emb_table(dims, sif)
    return scale * _emb_mean([tokenize(t).words for t in texts], index, T)


def emb_coverage(dev, train):
    """Share of word tokens (and distinct words) of each set that the word-vector vocabulary knows."""
    index = set((WORDVEC / "words.txt").read_text(encoding="utf-8").split("\n")[:-1])
    sets = {"train_en": [r.text for r in train if r.lang == "en"]}
    for lang in ("en", "ar", "hi"):
        sets["xlmt_" + lang] = [t for _, g, t in dev["xlmt"] if g == lang]
    for s in ("tweeteval", "vader", "sst2"):
        sets[s] = [t for _, _, t in dev[s]]
    out = {}
    for name, texts in sets.items():
        toks = [w for t in texts for w in tokenize(t).words]
        types = set(toks)
        out[name] = {"tokens": round(sum(w in index for w in toks) / max(len(toks), 1), 4),
                     "types": round(len(types & index) / max(len(types), 1), 4),
                     "no_known_word": round(float(np.mean([not any(w in index for w in tokenize(t).words)
                                                           for t in texts])), 4)}
    return out


def bucket(feat):
    return HASHER.transform([[feat]]).indices[0]


# ----------------------------------------------------------------------------------------------------
# The prior (sentiment.rs sentiment_prior) and the trainer
# ----------------------------------------------------------------------------------------------------
def prior(use_vader=True, use_hand=True, alpha=0.6, neg_f=0.5):
    P = np.zeros((1 << BITS, 3))

    def add(feat, v):
        b = bucket(feat)
        P[b, 0] -= v
        P[b, 2] += v

    if use_vader:
        val = {}
        for line in read("packages/vadersentiment_3.3.2/vader_lexicon.txt").split("\n"):
            c = line.split("\t")
            if len(c) < 2:
                continue
            try:
                v = float(c[1])
            except ValueError:
                continue
            val[c[0]] = v
            tw = tokenize(c[0]).words
            if len(tw) == 1:
                add("W" + tw[0], alpha * v / 2)
                add("N" + tw[0], -alpha * neg_f * v / 2)
        for line in read("packages/vadersentiment_3.3.2/emoji_utf8_lexicon.txt").split("\n"):
            if "\t" not in line:
                continue
            e, desc = line.split("\t", 1)
            if len(e) != 1:
                continue
            vs = [val[w] for w in desc.split() if w in val]
            if vs:
                add("S" + e, alpha * (sum(vs) / len(vs)) / 2)
    if use_hand:
        hand = Path(__file__).resolve().parents[2] / "scripts/models/handwritten"
        for p in sorted(hand.glob("sentiment_lexicon_*.tsv")):
            for line in p.read_text(encoding="utf-8").splitlines():
                if "\t" not in line:
                    continue
                w, v = line.split("\t", 1)
                for tw in tokenize(w).words:
                    add("W" + tw, alpha * float(v) * 0.6)
                    add("N" + tw, -alpha * neg_f * float(v) * 0.6)
    return P


def fit(X, y, w, P, lam, iters=120):
    """Multinomial logistic regression: mean weighted cross-entropy + lam/2 |W - P|^2, by L-BFGS."""
    n, d = X.shape
    k = 3
    if P.shape[0] < d:  # dense columns (emb): plain L2, no prior
        P = np.vstack([P, np.zeros((d - P.shape[0], k))])
    Y = np.zeros((n, k))
    Y[np.arange(n), y] = 1.0
    ws = w / w.sum()
    XT = X.T.tocsr()

    def f(theta):
        D = theta[: d * k].reshape(d, k)
        b = theta[d * k:]
        Z = X @ (P + D) + b
        Z -= Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        S = E / E.sum(axis=1, keepdims=True)
        loss = -(ws * np.log(np.maximum((S * Y).sum(axis=1), 1e-300))).sum() + 0.5 * lam * (D * D).sum()
        G = (S - Y) * ws[:, None]
        gD = XT @ G + lam * D
        return loss, np.concatenate([gD.ravel(), G.sum(axis=0)])

    theta0 = np.zeros(d * k + k)
    r = scipy.optimize.minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": iters})
    D = r.x[: d * k].reshape(d, k)
    return P + D, r.x[d * k:]


def sentiment_weights(rows, en_w=1.5, vader_w=2.0, cap=5.0, class_balance=True):
    """sentiment.rs: each (language, label) group weighs the same (capped at 5x), English x1.5, then the
    VADER tweets x2. Rows of other sources (src not xlmt/vader/emotion) keep their w (set by the caller)."""
    main = [r for r in rows if r.src in ("xlmt", "vader", "emotion")]
    counts = Counter((r.lang, r.label) for r in main)
    groups = len(counts)
    out = []
    for r in rows:
        if r.src in ("xlmt", "vader", "emotion"):
            x = min(len(main) / (groups * counts[(r.lang, r.label)]), cap) if class_balance else 1.0
            x *= en_w if r.lang == "en" else 1.0
            if r.src == "vader":
                x *= vader_w
            out.append(x)
        else:
            out.append(r.w)
    return np.array(out)


# ----------------------------------------------------------------------------------------------------
# The data-derived lexicon (variant b)
# ----------------------------------------------------------------------------------------------------
def derive_lexicon(rows, min_count=3, z_min=2.0):
    """Word -> polarity in {-2,-1,1,2} from labelled English rows: the log-odds ratio of a word in positive
    vs negative rows with an informative Dirichlet prior (Monroe et al. 2008), kept where |z| >= z_min."""
    cp, cn = Counter(), Counter()
    for r in rows:
        if r.label == "neu":
            continue
        ws = set(tokenize(r.text).words)
        (cp if r.label == "pos" else cn).update(ws)
    tot = cp + cn
    a0 = 0.01
    npos, nneg, ntot = sum(cp.values()), sum(cn.values()), sum(tot.values())
    lex = {}
    for w, c in tot.items():
        if c < min_count:
            continue
        aw = a0 * c / ntot * 1000 + 0.01
        A = aw * len(tot) / 1000
        lp = math.log((cp[w] + aw) / (npos + A - cp[w] - aw))
        ln = math.log((cn[w] + aw) / (nneg + A - cn[w] - aw))
        z = (lp - ln) / math.sqrt(1 / (cp[w] + aw) + 1 / (cn[w] + aw))
        if abs(z) >= z_min:
            lex[w] = (2 if abs(z) >= 2 * z_min else 1) * (1 if z > 0 else -1)
    return lex


def vader_lexicon_polarity():
    """Upper bound only (its text may not be copied into the project): VADER's valences / 2 as the lexicon."""
    lex = {}
    for line in read("packages/vadersentiment_3.3.2/vader_lexicon.txt").split("\n"):
        c = line.split("\t")
        try:
            v = float(c[1])
        except (IndexError, ValueError):
            continue
        tw = tokenize(c[0]).words
        if len(tw) == 1:
            lex[tw[0]] = v / 2
    return lex


# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------
def mf1(gold, pred, labels=(0, 1, 2)):
    return f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0)


def decide(Z, off):
    Z = Z.copy()
    Z[:, 0] += off[0]
    Z[:, 2] += off[1]
    return Z.argmax(axis=1)


def scores_for(Zs, dev, off=(0.0, 0.0), off_en=None):
    """Macro-F1 per reported set from logits Zs[set]."""
    res = {}
    oe = off_en if off_en is not None else off
    g = np.array([LIDX[l] for l, _, _ in dev["xlmt"]])
    langs = np.array([lang for _, lang, _ in dev["xlmt"]])
    per = {}
    for lang in sorted(set(langs)):
        m = langs == lang
        p = decide(Zs["xlmt"][m], oe if lang == "en" else off)
        per[lang] = mf1(g[m], p)
    res["xlmt_en"] = per["en"]
    res["ar"], res["hi"] = per["ar"], per["hi"]
    res["mean8"] = float(np.mean(list(per.values())))
    res["per_lang"] = per
    for s in ("tweeteval", "vader"):
        g = np.array([LIDX[l] for l, _, _ in dev[s]])
        res[s] = mf1(g, decide(Zs[s], oe))
    g = np.array([LIDX[l] for l, _, _ in dev["sst2"]])
    Z = Zs["sst2"]
    res["sst2"] = mf1(g, np.where(Z[:, 2] > Z[:, 0], 2, 0), (0, 2))
    res["sst2_3w"] = mf1(g, decide(Z, oe), (0, 2))
    res["en4"] = float(np.mean([res["xlmt_en"], res["tweeteval"], res["vader"], res["sst2"]]))
    return res


def peers(dev):
    out = {}
    systems = {}
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        sia = SentimentIntensityAnalyzer()
        systems["VADER"] = (lambda t: sia.polarity_scores(t)["compound"], 0.05)
    except ImportError:
        pass
    try:
        from afinn import Afinn
        af = Afinn(emoticons=True)
        systems["AFINN"] = (af.score, 0.0)
    except ImportError:
        pass
    try:
        from textblob import TextBlob
        systems["TextBlob"] = (lambda t: TextBlob(t).sentiment.polarity, 0.0)
    except Exception:
        pass
    for name, (fn, th) in systems.items():
        res = {}

        def lab3(s, th=th):
            return 2 if s > th or (th == 0 and s > 0) else 0 if s < -th or (th == 0 and s < 0) else 1

        per = {}
        for lang in ("en",):
            rows = [(l, t) for l, g, t in dev["xlmt"] if g == lang]
            per[lang] = mf1([LIDX[l] for l, _ in rows], [lab3(fn(t)) for _, t in rows])
        res["xlmt_en"] = per["en"]
        for s in ("tweeteval", "vader"):
            res[s] = mf1([LIDX[l] for l, _, _ in dev[s]], [lab3(fn(t)) for _, _, t in dev[s]])
        sc = [fn(t) for _, _, t in dev["sst2"]]
        g = [LIDX[l] for l, _, _ in dev["sst2"]]
        res["sst2"] = mf1(g, [2 if s >= 0 else 0 for s in sc], (0, 2))
        res["sst2_3w"] = mf1(g, [lab3(s) for s in sc], (0, 2))
        res["en4"] = float(np.mean([res["xlmt_en"], res["tweeteval"], res["vader"], res["sst2"]]))
        out[name] = res
    return out


# ----------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------
BASE = {"chars": (3, 5), "neg_scope": "3", "signals": True}
RULES = {"neg_scope": "clause", "intens": True, "but": True, "amplify": True, "emo_pol": True}

VARIANTS = [
    # name, feature options, training options (most informative first; the last ones are side checks)
    ("B0 proxy of the Rust recipe", {}, {}),
    ("a1 negation to clause end", {"neg_scope": "clause"}, {}),
    ("a2 intensifiers/dampeners", {"intens": True}, {}),
    ("a3 contrast: clause after 'but' x2", {"but": True}, {}),
    ("a4 emoji/emoticon polarity feature", {"emo_pol": True}, {}),
    ("a5 CAPS/elongated words x2", {"amplify": True}, {}),
    ("a  all rule features", RULES, {}),
    ("b  lexicon from train rows (cross-fitted)", {}, {"lex": "train"}),
    ("b+ lexicon from train rows + SST-2 train", {}, {"lex": "train+sst2"}),
    ("c  emoji weak labels (chit-chat), w=0.5", {}, {"weak": 0.5}),
    ("d1 English offsets (3-fold CV on train)", {}, {"offsets": True}),
    ("e1 + SST-2 train (total = 0.5x en)", {}, {"sst2": 0.5}),
    ("e3 English weight x3 (en_w 4.5)", {}, {"en_w": 4.5}),
    ("A+b+", RULES, {"lex": "train+sst2"}),
    ("A+e1", RULES, {"sst2": 0.5}),
    ("A+b+ +e1 +d1", RULES, {"lex": "train+sst2", "sst2": 0.5, "offsets": True}),
    ("A+b+ +e1 +e3 +d1", RULES, {"lex": "train+sst2", "sst2": 0.5, "en_w": 4.5, "offsets": True}),
    ("p1 lexicon prior alpha 3 (was 0.6)", {}, {"alpha": 3.0}),
    ("p2 lexicon prior alpha 10", {}, {"alpha": 10.0}),
    ("bV VADER lexicon as sum feature (upper bound)", {}, {"lex": "vader"}),
    ("A+p2", RULES, {"alpha": 10.0}),
    ("A+p2+b+ +e1", RULES, {"alpha": 10.0, "lex": "train+sst2", "sst2": 0.5}),
    ("A+bV+e1", RULES, {"lex": "vader", "sst2": 0.5}),
    ("A+bV+e1+e3", RULES, {"lex": "vader", "sst2": 0.5, "en_w": 4.5}),
    # Part 2: dense mean of static word vectors distilled from all-MiniLM-L6-v2 (distill_wordvec.py);
    # emb = (dims, SIF-weighted table, scale of the block relative to norm 1 on English training rows)
    ("B0+emb64", {"emb": (64, False, 1.0)}, {}),
    ("B0+emb64x3", {"emb": (64, False, 3.0)}, {}),
    ("B0+emb64sif", {"emb": (64, True, 1.0)}, {}),
    ("B0+emb128", {"emb": (128, False, 1.0)}, {}),
    ("A+bV+e1+emb64", {**RULES, "emb": (64, False, 1.0)}, {"lex": "vader", "sst2": 0.5}),
    ("A+bV+e1+e3+emb64", {**RULES, "emb": (64, False, 1.0)}, {"lex": "vader", "sst2": 0.5, "en_w": 4.5}),
    ("A+bV+e1+e3+emb64sif", {**RULES, "emb": (64, True, 1.0)}, {"lex": "vader", "sst2": 0.5, "en_w": 4.5}),
    ("A+bV+e1+e3+emb128", {**RULES, "emb": (128, False, 1.0)}, {"lex": "vader", "sst2": 0.5, "en_w": 4.5}),
    # Arabic and Hindi
    ("h1 Arabic normalisation", {"ar_norm": True}, {}),
    ("h2 char 2-4-grams", {"chars": (2, 4)}, {}),
    ("h4 romanised-Hindi skeleton words", {"skeleton": True}, {}),
    ("h5 per-language offsets (CV on train)", {}, {"lang_offsets": True}),
    ("h6 h1+h4+h5", {"ar_norm": True, "skeleton": True}, {"lang_offsets": True}),
    # side checks
    ("B0 without the VADER-lexicon prior", {}, {"vader_prior": False}),
    ("e2 + VADER review/news snippets (0.5x)", {}, {"vother": 0.5}),
    ("d2 no class balancing + offsets", {}, {"balance": False, "offsets": True}),
    ("A+b+ +c +e1 +e2 +e3 +d1", RULES, {"lex": "train+sst2", "sst2": 0.5, "vother": 0.5, "en_w": 4.5,
                                        "weak": 0.5, "offsets": True}),
]


class Runner:
    def __init__(self, train, dev, lam, iters):
        self.train, self.dev, self.lam, self.iters = train, dev, lam, iters
        EMB_NORM_TEXTS[:] = [r.text for r in train if r.lang == "en"]
        self.priors = {}
        self.sst2 = None
        self.vother = None
        self.weak = None

    def prior(self, vader, alpha=0.6):
        if (vader, alpha) not in self.priors:
            self.priors[(vader, alpha)] = prior(use_vader=vader, alpha=alpha)
        return self.priors[(vader, alpha)]

    def rows(self, to):
        rows = list(self.train)
        en_total = None
        extra = []
        if to.get("sst2"):
            self.sst2 = self.sst2 or extra_sst2()
            extra.append((self.sst2, to["sst2"]))
        if to.get("vother"):
            self.vother = self.vother or extra_vader_other()
            extra.append((self.vother, to["vother"]))
        if to.get("weak"):
            if self.weak is None:
                self.weak, counts = weak_rows()
                print("  weak labels (chit-chat, before balancing):", counts, flush=True)
            extra.append((self.weak, to["weak"]))
        base_w = sentiment_weights(rows, en_w=to.get("en_w", 1.5), class_balance=to.get("balance", True))
        en_total = sum(w for w, r in zip(base_w, rows) if r.lang == "en")
        for ex, frac in extra:
            # Each extra source weighs `frac` of the English tweets in total, its classes equally.
            c = Counter(r.label for r in ex)
            for r in ex:
                r.w = frac * en_total / (len(c) * c[r.label])
            rows += ex
        w = sentiment_weights(rows, en_w=to.get("en_w", 1.5), class_balance=to.get("balance", True))
        return rows, w

    def lexicon_for(self, kind, rows, exclude=None):
        en = [r for r in rows if r.lang == "en" and r.src in ("xlmt", "vader", "emotion", "weak")]
        if exclude is not None:
            en = [r for r in en if norm_exact(r.text) not in exclude]
        if kind == "vader":
            return vader_lexicon_polarity()
        if kind == "train+sst2":
            self.sst2 = self.sst2 or extra_sst2()
            en = en + self.sst2
        return derive_lexicon(en)

    def train_model(self, rows, w, fo, to, exclude=None):
        """Fit on `rows` minus texts in `exclude`; returns (W, b, lexicon)."""
        keep = [i for i, r in enumerate(rows) if exclude is None or norm_exact(r.text) not in exclude]
        rows = [rows[i] for i in keep]
        w = w[keep]
        lex = None
        if to.get("lex"):
            # Cross-fitted: the lexicon features of a training row come from a lexicon built without the
            # row's fold, so the model does not learn to trust a lexicon that has seen its labels.
            lex = self.lexicon_for(to["lex"], rows)
            k = 3
            folds = [hfold(r.text, k, "lex") for r in rows]
            parts = []
            for f in range(k):
                lf = self.lexicon_for(to["lex"], [r for r, g in zip(rows, folds) if g != f])
                idx = [i for i, g in enumerate(folds) if g == f]
                parts.append((idx, matrix([rows[i].text for i in idx], fo, lf)))
            order = np.concatenate([np.array(i, dtype=int) for i, _ in parts])
            X = sp.vstack([m for _, m in parts]).tocsr()
            inv = np.empty_like(order)
            inv[order] = np.arange(len(order))
            X = X[inv]
        else:
            X = matrix([r.text for r in rows], fo)
        y = np.array([LIDX[r.label] for r in rows])
        W, b = fit(X, y, w, self.prior(to.get("vader_prior", True), to.get("alpha", 0.6)), self.lam, self.iters)
        return W, b, lex

    def offsets(self, rows, w, fo, to, per_lang=False):
        """Logit offsets (neg, pos) maximising out-of-fold macro-F1 on the training tweets (3 folds): for
        English (mean of XLM-T en and VADER tweets) or, with per_lang, each language."""
        k = 3
        folds = np.array([hfold(r.text, k, "cv") for r in rows])
        Z = np.zeros((len(rows), 3))
        for f in range(k):
            tr = [r for r, g in zip(rows, folds) if g != f]
            W, b, lex = self.train_model(tr, w[folds != f], fo, to)
            idx = np.where(folds == f)[0]
            Z[idx] = matrix([rows[i].text for i in idx], fo, lex) @ W + b
        y = np.array([LIDX[r.label] for r in rows])
        grid = np.arange(-1.0, 1.01, 0.1)

        def best(groups):
            top = (-1, 0.0, 0.0)
            for a in grid:
                for c in grid:
                    s = np.mean([mf1(y[m], decide(Z[m], (a, c))) for m in groups])
                    if s > top[0] + 1e-9:
                        top = (s, a, c)
            return top

        src = np.array([r.src for r in rows])
        lang = np.array([r.lang for r in rows])
        if per_lang:
            return {l: best([(lang == l) & (src == "xlmt")] + ([(src == "vader")] if l == "en" else []))[1:]
                    for l in sorted(set(lang))}
        return best([(lang == "en") & (src == "xlmt"), src == "vader"])[1:]

    def run(self, name, fo_delta, to):
        t0 = time.time()
        fo = {**BASE, **fo_delta}
        rows, w = self.rows(to)
        W, b, lex = self.train_model(rows, w, fo, to)
        Zs = {s: matrix([t for _, _, t in self.dev[s]], fo, lex) @ W + b for s in ("xlmt", "vader", "sst2")}
        # TweetEval val, 2-fold cross-fitted.
        tv = self.dev["tweeteval"]
        Zt = np.zeros((len(tv), 3))
        half = np.array([hfold(t, 2, "tv") for _, _, t in tv])
        for f in (0, 1):
            excl = {norm_exact(t) for (_, _, t), h in zip(tv, half) if h == f}
            Wf, bf, lexf = self.train_model(rows, w, fo, to, exclude=excl)
            idx = np.where(half == f)[0]
            Zt[idx] = matrix([tv[i][2] for i in idx], fo, lexf) @ Wf + bf
        Zs["tweeteval"] = Zt
        off, off_en, lang_off = (0.0, 0.0), None, None
        if to.get("offsets"):
            off_en = self.offsets(rows, w, fo, to)
        res = scores_for(Zs, self.dev, off, off_en)
        if to.get("lang_offsets"):
            lang_off = self.offsets(rows, w, fo, to, per_lang=True)
            g = np.array([LIDX[l] for l, _, _ in self.dev["xlmt"]])
            langs = np.array([lang for _, lang, _ in self.dev["xlmt"]])
            per = {}
            for l in sorted(set(langs)):
                m = langs == l
                per[l] = mf1(g[m], decide(Zs["xlmt"][m], lang_off[l]))
            res["per_lang"] = per
            res["ar"], res["hi"], res["xlmt_en"] = per["ar"], per["hi"], per["en"]
            res["mean8"] = float(np.mean(list(per.values())))
            oe = lang_off["en"]
            for s in ("tweeteval", "vader"):
                gg = np.array([LIDX[l] for l, _, _ in self.dev[s]])
                res[s] = mf1(gg, decide(Zs[s], oe))
            gg = np.array([LIDX[l] for l, _, _ in self.dev["sst2"]])
            res["sst2_3w"] = mf1(gg, decide(Zs["sst2"], oe), (0, 2))
            res["en4"] = float(np.mean([res["xlmt_en"], res["tweeteval"], res["vader"], res["sst2"]]))
        res["offsets_en"] = off_en
        res["lang_offsets"] = lang_off
        res["n_rows"] = len(rows)
        res["lexicon_words"] = len(lex) if lex else 0
        res["seconds"] = round(time.time() - t0, 1)
        return res


COLS = ["xlmt_en", "tweeteval", "vader", "sst2", "sst2_3w", "en4", "ar", "hi", "mean8"]


def fmt_row(name, r):
    cells = ["%.3f" % r[c] if isinstance(r.get(c), float) else "" for c in COLS]
    return "| %s | %s |" % (name, " | ".join(cells))


def main():
    global DATA, WORDVEC
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--only", default="", help="comma-separated variant names (exact) or name prefixes")
    ap.add_argument("--lam", type=float, default=3e-5)
    ap.add_argument("--iters", type=int, default=120)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--wordvec", default=str(WORDVEC), help="distill_wordvec.py's output dir (emb variants)")
    a = ap.parse_args()
    DATA = Path(a.data).resolve()
    WORDVEC = Path(a.wordvec)
    train, dev = load()
    c = Counter((r.lang, r.src) for r in train)
    print("training rows:", len(train), dict(sorted(c.items())), flush=True)
    print("dev rows:", {k: len(v) for k, v in dev.items()}, flush=True)
    results = {}
    if not a.no_peers:
        results.update(peers(dev))
        for n, r in results.items():
            print(fmt_row(n, r), flush=True)
    runner = Runner(train, dev, a.lam, a.iters)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    names = {name for name, _, _ in VARIANTS}

    def picked(name):  # an exact variant name picks only itself; anything else is a prefix
        return not only or any(name == o or (o not in names and name.startswith(o)) for o in only)

    if any("emb" in fo for name, fo, _ in VARIANTS if picked(name)):
        results["emb_coverage"] = emb_coverage(dev, train)
        print("word-vector vocabulary coverage:", json.dumps(results["emb_coverage"]), flush=True)
    print("| variant | " + " | ".join(COLS) + " |")
    print("|---" * (len(COLS) + 1) + "|")
    for name, fo, to in VARIANTS:
        if not picked(name):
            continue
        r = runner.run(name, fo, to)
        results[name] = r
        print(fmt_row(name, r), " (%ss%s)" % (r["seconds"], ", offsets en %s" % (r["offsets_en"],)
                                           if r["offsets_en"] else ""), flush=True)
        Path(a.out).write_text(json.dumps(results, indent=1, default=float))
    print("per-language XLM-T val:")
    for name, r in results.items():
        if "per_lang" in r:
            print("  %-45s %s" % (name, " ".join("%s %.3f" % kv for kv in sorted(r["per_lang"].items()))))


if __name__ == "__main__":
    main()
