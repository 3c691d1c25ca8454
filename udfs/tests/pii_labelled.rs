//! Masking precision and recall of `redact_pii` on a labelled set of support-chat messages.
//!
//! The set is `tests/fixtures/pii_labelled.tsv`: hand-written customer-service messages in the six demo
//! languages (en, es, pt, fr, de, it), tab-separated with the columns `language`, `text` and `spans`, where
//! `spans` is a JSON array of `[kind, "exact substring"]` pairs (kind: `email`, `phone`, `card`, `iban`, `ip`).
//! A listed substring is found in the text where it stands alone (no letter or digit right before or after
//! it), once per listing; everything else in the text is a negative, and the set holds many hard ones
//! (order, tracking and customer numbers, dates, times, prices, postcodes, versions, invalid-Luhn 16-digit
//! numbers, company ids); mistyped IBANs in the print format are labelled `iban`, as `redact_pii` hides
//! them whole. The file's header comment says the same.
//!
//! Every message goes through [`pii::find`] with all kinds on, as `redact_pii(text)` does. A finding and a
//! label *match* when they have the same kind and the same span once each is trimmed of leading and trailing
//! whitespace and ASCII punctuation: `(415) 555-0132` labelled and `415) 555-0132` found match, `+34 612…`
//! labelled and `612…` found do not (the country code would stay in the text). Then, per kind:
//! - true positive: a label matched by a finding (findings never overlap, so at most one can match);
//! - false positive: a finding that matches no label, including one of the wrong kind, one that covers only
//!   part of a label or one that runs past it;
//! - false negative: a label that no finding matches;
//!
//! and precision = TP / (TP + FP), recall = TP / (TP + FN), per kind over all languages and per language.
//! The tests print the tables and every error (run `cargo test -p colloquy-udfs --test pii_labelled --
//! --nocapture`). [`meets_the_target`] asserts the governance target, precision ≥ 0.95 and recall ≥ 0.95 for
//! every kind over all languages; [`meets_the_target_or_a_known_floor`] asserts it too, except for the
//! figures listed in [`KNOWN_GAPS`], which must stay above their floor. Both also check the output of
//! [`pii::redact`]: a labelled substring may survive redaction only if it is a false negative, so whatever
//! `find` recognised is really hidden.

use std::fmt::Write as _;

use colloquy_udfs::pii::{self, Finding, PiiKind, PiiSet};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/pii_labelled.tsv"
);
const LANGUAGES: [&str; 6] = ["en", "es", "pt", "fr", "de", "it"];
const TARGET: f64 = 0.95;
const MIN_MESSAGES_PER_LANGUAGE: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Metric {
    Precision,
    Recall,
}

/// Figures known to be below [`TARGET`] on this set: the kind, the figure, a floor that still catches a
/// regression meanwhile, and why. [`meets_the_target_or_a_known_floor`] fails when a listed figure drops
/// below its floor, and also when it reaches the target (then the entry goes): the target holds for
/// every figure once this list is empty.
const KNOWN_GAPS: &[(PiiKind, Metric, f64, &str)] = &[];

struct Row {
    line: usize,
    language: usize,
    text: String,
    labels: Vec<Label>,
}

#[derive(Clone, Copy)]
struct Label {
    kind: PiiKind,
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn labels(self) -> usize {
        self.tp + self.fn_
    }

    fn get(self, metric: Metric) -> f64 {
        match metric {
            Metric::Precision => ratio(self.tp, self.tp + self.fp),
            Metric::Recall => ratio(self.tp, self.tp + self.fn_),
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            tp: self.tp + other.tp,
            fp: self.fp + other.fp,
            fn_: self.fn_ + other.fn_,
        }
    }
}

/// 1.0 for an empty denominator: no findings at all are perfectly precise.
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

struct Evaluation {
    /// Indexed by `PiiKind as usize`, then by the index in [`LANGUAGES`].
    counts: [[Counts; LANGUAGES.len()]; PiiKind::ALL.len()],
    table: String,
    errors: String,
    /// Labelled substrings that `find` matched and `redact` still left in the text.
    unexplained_leaks: Vec<String>,
}

impl Evaluation {
    fn total(&self, kind: PiiKind) -> Counts {
        self.counts[kind as usize]
            .iter()
            .fold(Counts::default(), |a, &c| a.add(c))
    }

    /// Prints the tables and the errors (visible with `--nocapture`), and checks `redact` against `find`.
    fn report(&self) {
        println!("{}", self.table);
        if self.errors.is_empty() {
            println!("no false positives or false negatives");
        } else {
            println!(
                "errors (FP: found, not labelled; FN: labelled, not found):\n{}",
                self.errors
            );
        }
        assert!(
            self.unexplained_leaks.is_empty(),
            "redact() kept personal data that find() matched:\n{}",
            self.unexplained_leaks.join("\n")
        );
    }
}

fn evaluate() -> Evaluation {
    let rows = read_fixture();
    check_coverage(&rows);

    let mut counts = [[Counts::default(); LANGUAGES.len()]; PiiKind::ALL.len()];
    let mut errors = String::new();
    let mut unexplained_leaks = Vec::new();
    for row in &rows {
        let lang = LANGUAGES[row.language];
        let found = pii::find(&row.text, PiiSet::ALL);
        let mut label_hit = vec![false; row.labels.len()];
        for f in &found {
            let hit = row
                .labels
                .iter()
                .position(|l| l.kind == f.kind && same_span(&row.text, l, f));
            let c = &mut counts[f.kind as usize][row.language];
            match hit {
                Some(i) => {
                    label_hit[i] = true;
                    c.tp += 1;
                }
                None => {
                    c.fp += 1;
                    let _ = writeln!(
                        errors,
                        "  FP {:5} {:?} in [{lang}:{}] {}",
                        f.kind.sql_name(),
                        &row.text[f.start..f.end],
                        row.line,
                        row.text
                    );
                }
            }
        }
        let redacted = pii::redact(&row.text, PiiSet::ALL);
        for (label, &hit) in row.labels.iter().zip(&label_hit) {
            let value = &row.text[label.start..label.end];
            if !hit {
                counts[label.kind as usize][row.language].fn_ += 1;
                let _ = writeln!(
                    errors,
                    "  FN {:5} {value:?} in [{lang}:{}] {}  ->  {redacted}",
                    label.kind.sql_name(),
                    row.line,
                    row.text,
                );
            } else if redacted.contains(value) {
                unexplained_leaks.push(format!("[{lang}:{}] {value:?} in {redacted:?}", row.line));
            }
        }
    }

    let mut eval = Evaluation {
        counts,
        table: String::new(),
        errors,
        unexplained_leaks,
    };
    let mut table = format!(
        "redact_pii on {} labelled messages ({})\n\n\
         | kind | labels | TP | FP | FN | precision | recall |\n|---|---:|---:|---:|---:|---:|---:|\n",
        rows.len(),
        LANGUAGES.join(", ")
    );
    for kind in PiiKind::ALL {
        let c = eval.total(kind);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            kind.sql_name(),
            c.labels(),
            c.tp,
            c.fp,
            c.fn_,
            c.get(Metric::Precision),
            c.get(Metric::Recall)
        );
    }
    let _ = write!(table, "\nprecision / recall per language\n\n| kind |");
    for lang in LANGUAGES {
        let _ = write!(table, " {lang} |");
    }
    let _ = write!(table, "\n|---|{}\n", "---:|".repeat(LANGUAGES.len()));
    for kind in PiiKind::ALL {
        let _ = write!(table, "| {} |", kind.sql_name());
        for c in eval.counts[kind as usize] {
            let _ = write!(
                table,
                " {:.2} / {:.2} |",
                c.get(Metric::Precision),
                c.get(Metric::Recall)
            );
        }
        table.push('\n');
    }
    eval.table = table;
    eval
}

/// Every kind's overall precision and recall, with the figures below the target.
fn shortfalls(eval: &Evaluation) -> Vec<(PiiKind, Metric, f64)> {
    PiiKind::ALL
        .into_iter()
        .flat_map(|kind| [(kind, Metric::Precision), (kind, Metric::Recall)])
        .map(|(kind, metric)| (kind, metric, eval.total(kind).get(metric)))
        .filter(|&(_, _, value)| value < TARGET)
        .collect()
}

/// The target for every figure not in [`KNOWN_GAPS`], and the listed floor for those that are.
#[test]
fn meets_the_target_or_a_known_floor() {
    let eval = evaluate();
    eval.report();
    for (kind, metric, value) in shortfalls(&eval) {
        let gap = KNOWN_GAPS
            .iter()
            .find(|g| g.0 == kind && g.1 == metric)
            .unwrap_or_else(|| {
                panic!(
                    "{} {metric:?} {value:.3} < {TARGET}\n{}\n{}",
                    kind.sql_name(),
                    eval.table,
                    eval.errors
                )
            });
        assert!(
            value >= gap.2,
            "{} {metric:?} {value:.3} fell below its known floor {} ({})\n{}\n{}",
            kind.sql_name(),
            gap.2,
            gap.3,
            eval.table,
            eval.errors
        );
        println!(
            "known gap: {} {metric:?} {value:.3} < {TARGET} (floor {}): {}",
            kind.sql_name(),
            gap.2,
            gap.3
        );
    }
    for &(kind, metric, _, _) in KNOWN_GAPS {
        let value = eval.total(kind).get(metric);
        assert!(
            value < TARGET,
            "{} {metric:?} is {value:.3} now: remove it from KNOWN_GAPS",
            kind.sql_name()
        );
    }
}

/// Whether the finding covers the label, up to whitespace and ASCII punctuation at either end of each.
fn same_span(text: &str, label: &Label, found: &Finding) -> bool {
    trim(text, label.start, label.end) == trim(text, found.start, found.end)
}

fn trim(text: &str, start: usize, end: usize) -> (usize, usize) {
    let edge = |c: char| c.is_whitespace() || c.is_ascii_punctuation();
    let span = &text[start..end];
    let inner = span.trim_start_matches(edge);
    let s = start + (span.len() - inner.len());
    let e = s + inner.trim_end_matches(edge).len();
    (s, e)
}

/// Each language has its share of messages and every kind among its labels, so no figure above rests on an
/// empty cell.
fn check_coverage(rows: &[Row]) {
    for (i, lang) in LANGUAGES.iter().enumerate() {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.language == i).collect();
        assert!(
            mine.len() >= MIN_MESSAGES_PER_LANGUAGE,
            "{lang}: {} messages, want {MIN_MESSAGES_PER_LANGUAGE}",
            mine.len()
        );
        for kind in PiiKind::ALL {
            assert!(
                mine.iter().any(|r| r.labels.iter().any(|l| l.kind == kind)),
                "{lang}: no {} label",
                kind.sql_name()
            );
        }
    }
}

fn read_fixture() -> Vec<Row> {
    let data = std::fs::read_to_string(FIXTURE).expect("the labelled set is readable");
    let mut lines = data
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    let (_, header) = lines.next().expect("a header line");
    assert_eq!(header, "language\ttext\tspans", "column header");
    lines
        .map(|(line, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            let [language, text, spans] = cols[..] else {
                panic!("line {line}: {} columns, want 3", cols.len());
            };
            let language = LANGUAGES
                .iter()
                .position(|&l| l == language)
                .unwrap_or_else(|| panic!("line {line}: unknown language {language:?}"));
            let pairs = parse_spans(spans).unwrap_or_else(|e| panic!("line {line}: spans: {e}"));
            let labels = locate(text, &pairs).unwrap_or_else(|e| panic!("line {line}: {e}"));
            Row {
                line,
                language,
                text: text.to_owned(),
                labels,
            }
        })
        .collect()
}

/// The labels' byte spans: each listed substring at its standalone occurrences, in order.
fn locate(text: &str, pairs: &[(String, String)]) -> Result<Vec<Label>, String> {
    let mut labels = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    for (kind_name, value) in pairs {
        let kind =
            PiiKind::parse(kind_name).ok_or_else(|| format!("unknown kind {kind_name:?}"))?;
        if value.is_empty() || done.contains(&value.as_str()) {
            continue;
        }
        done.push(value);
        let listed: Vec<&str> = pairs
            .iter()
            .filter(|(_, v)| v == value)
            .map(|(k, _)| k.as_str())
            .collect();
        if listed.iter().any(|k| k != kind_name) {
            return Err(format!("{value:?} is listed with two kinds"));
        }
        let at = standalone(text, value);
        if at.len() != listed.len() {
            return Err(format!(
                "{value:?} is listed {} times but stands alone {} times in {text:?}",
                listed.len(),
                at.len()
            ));
        }
        labels.extend(at.into_iter().map(|start| Label {
            kind,
            start,
            end: start + value.len(),
        }));
    }
    if labels.iter().any(|l| l.start == l.end) {
        return Err("empty label".into());
    }
    labels.sort_by_key(|l| l.start);
    if labels.windows(2).any(|w| w[0].end > w[1].start) {
        return Err("overlapping labels".into());
    }
    Ok(labels)
}

/// Byte offsets where `value` occurs with no letter or digit right before or after it.
fn standalone(text: &str, value: &str) -> Vec<usize> {
    text.match_indices(value)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = text[..i].chars().next_back();
            let after = text[i + value.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
        .collect()
}

/// Parses the `spans` column: a JSON array of two-string arrays. Only this shape is accepted (the test
/// crate has no JSON dependency), with the escapes JSON allows in strings.
fn parse_spans(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = Json {
        chars: s.chars().collect(),
        pos: 0,
    };
    let mut out = Vec::new();
    p.expect('[')?;
    if !p.eat(']') {
        loop {
            p.expect('[')?;
            let kind = p.string()?;
            p.expect(',')?;
            let value = p.string()?;
            p.expect(']')?;
            out.push((kind, value));
            if p.eat(']') {
                break;
            }
            p.expect(',')?;
        }
    }
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("trailing text at {}", p.pos));
    }
    Ok(out)
}

struct Json {
    chars: Vec<char>,
    pos: usize,
}

impl Json {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        let ok = self.chars.get(self.pos) == Some(&c);
        self.pos += usize::from(ok);
        ok
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {c:?} at {}", self.pos))
        }
    }

    fn next(&mut self) -> Result<char, String> {
        let c = *self
            .chars
            .get(self.pos)
            .ok_or_else(|| "unterminated string".to_owned())?;
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.next()?.to_digit(16).ok_or("bad \\u escape")?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Ok(out),
                '\\' => match self.next()? {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hi = self.hex4()?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            if self.next()? != '\\' || self.next()? != 'u' {
                                return Err("lone surrogate".into());
                            }
                            let lo = self.hex4()?;
                            0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                        } else {
                            hi
                        };
                        out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                    }
                    c => return Err(format!("bad escape \\{c}")),
                },
                c => out.push(c),
            }
        }
    }
}

#[test]
fn span_parser_reads_json_pairs() {
    assert_eq!(parse_spans("[]"), Ok(vec![]));
    assert_eq!(
        parse_spans(r#"[["email", "a@b.co"], ["phone","+1 \"2\" \u00e9\\"]]"#),
        Ok(vec![
            ("email".into(), "a@b.co".into()),
            ("phone".into(), "+1 \"2\" é\\".into())
        ])
    );
    assert!(parse_spans(r#"[["email"]]"#).is_err());
    assert!(parse_spans(r#"[["email", "x"]"#).is_err());
    assert!(parse_spans(r#"[] x"#).is_err());
}

#[test]
fn labels_are_located_where_they_stand_alone() {
    let text = "ip 192.168.1.1 and 192.168.1.105";
    let pairs = [("ip".to_owned(), "192.168.1.1".to_owned())];
    let labels = locate(text, &pairs).expect("one standalone occurrence");
    assert_eq!((labels[0].start, labels[0].end), (3, 14));
    assert!(locate("a@b.co a@b.co", &[("email".into(), "a@b.co".into())]).is_err());
    assert!(locate("nothing", &[("email".into(), "a@b.co".into())]).is_err());
}

#[test]
fn matching_ignores_only_surrounding_punctuation() {
    let text = "call (415) 555-0132, or +34 612 34 56 78.";
    let label = |s: &str| {
        let start = text.find(s).expect("in text");
        Label {
            kind: PiiKind::Phone,
            start,
            end: start + s.len(),
        }
    };
    let finding = |s: &str| {
        let start = text.find(s).expect("in text");
        Finding {
            kind: PiiKind::Phone,
            start,
            end: start + s.len(),
        }
    };
    assert!(same_span(
        text,
        &label("(415) 555-0132"),
        &finding("415) 555-0132")
    ));
    assert!(same_span(
        text,
        &label("(415) 555-0132"),
        &finding("(415) 555-0132, ")
    ));
    assert!(!same_span(
        text,
        &label("+34 612 34 56 78"),
        &finding("612 34 56 78")
    ));
    assert!(!same_span(
        text,
        &label("+34 612 34 56 78"),
        &finding("+34 612 34 56")
    ));
}
