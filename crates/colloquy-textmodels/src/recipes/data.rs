//! The dataset readers: the TSV files `scripts/models/prepare_data.py` writes (UTF-8, no header, one row
//! per line), and the raw files of the public data folder read directly: VADER's lexicons and tweets,
//! TweetEval emotion's texts and the BYU chit-chat dialogues' JSON.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::Result;

/// Rows of a TSV file of `columns` columns; a missing file is an error naming it.
pub fn read_tsv(path: &Path, columns: usize) -> Result<Vec<Vec<String>>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_tsv(&text, columns, &path.display().to_string())
}

/// Rows of TSV `text`: each line split at its first `columns - 1` tabs (the last column may hold tabs).
/// A line with fewer columns is an error naming `origin` and the line.
pub fn parse_tsv(text: &str, columns: usize, origin: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<String> = line.splitn(columns, '\t').map(str::to_owned).collect();
        if cols.len() != columns {
            return Err(format!("{origin}:{}: expected {columns} columns", n + 1).into());
        }
        rows.push(cols);
    }
    Ok(rows)
}

/// `text` with runs of whitespace collapsed to one space and none at the ends, as the preparation script
/// writes texts.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The English training texts that come from the VADER tweets and from TweetEval emotion, by text
/// (whitespace collapsed), to the source's name (`vader`, `emotion`). Empty without a data folder; a
/// missing file adds nothing.
pub fn english_sources(data: Option<&Path>) -> BTreeMap<String, &'static str> {
    let mut out = BTreeMap::new();
    let Some(data) = data else {
        return out;
    };
    let vader = data.join("sentiment/vader_icwsm2014_groundtruth/tweets_GroundTruth.txt");
    if let Ok(text) = fs::read_to_string(&vader) {
        for t in vader_tweets(&text) {
            out.insert(collapse_whitespace(t), "vader");
        }
    }
    for split in ["train", "val"] {
        let path = data.join(format!("sentiment/tweeteval_emotion/{split}_text.txt"));
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                out.insert(collapse_whitespace(line), "emotion");
            }
        }
    }
    out
}

/// The tweets of VADER's ground-truth file (`id<TAB>valence<TAB>text`).
pub fn vader_tweets(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| line.splitn(3, '\t').nth(2))
}

/// VADER's lexicon (`word<TAB>mean valence<TAB>...`), in file order; lines without a numeric valence are
/// skipped.
pub fn vader_lexicon(text: &str) -> Vec<(&str, f32)> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let (word, v) = (cols.next()?, cols.next()?);
            Some((word, v.trim().parse::<f32>().ok()?))
        })
        .collect()
}

/// VADER's emoji lexicon (`emoji<TAB>description`), in file order: the entries that are one character.
pub fn emoji_lexicon(text: &str) -> Vec<(char, &str)> {
    text.lines()
        .filter_map(|line| {
            let (e, desc) = line.split_once('\t')?;
            let mut c = e.chars();
            match (c.next(), c.next()) {
                (Some(ch), None) => Some((ch, desc)),
                _ => None,
            }
        })
        .collect()
}

/// The messages of the BYU chit-chat dialogues (unlabelled English chat), from `dialogues/chitchat_byu/
/// dataset.json` in the data folder; none without a data folder.
pub fn chitchat_messages(data: Option<&Path>) -> Result<Vec<String>> {
    let Some(data) = data else {
        return Ok(vec![]);
    };
    let json = fs::read_to_string(data.join("dialogues/chitchat_byu/dataset.json"))?;
    Ok(json_text_values(&json))
}

/// Every non-blank `"text": "..."` string value of a JSON document, in order, read by hand (this crate
/// has no dependencies): escapes decoded, `\n`, `\t` and `\r` as a space.
pub fn json_text_values(json: &str) -> Vec<String> {
    let mut out = Vec::new();
    let key = "\"text\": \"";
    let mut rest = json;
    while let Some(i) = rest.find(key) {
        rest = &rest[i + key.len()..];
        let mut text = String::new();
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((j, c)) = chars.next() {
            match c {
                '"' => {
                    end = j + 1;
                    break;
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n' | 't' | 'r') => text.push(' '),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        if let Some(ch) =
                            u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            text.push(ch);
                        }
                    }
                    Some(other) => text.push(other),
                    None => {}
                },
                _ => text.push(c),
            }
        }
        rest = &rest[end..];
        if !text.trim().is_empty() {
            out.push(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes::tests::TempDir;

    #[test]
    fn tsv_rows_and_errors() {
        let rows = parse_tsv("pos\ten\tgreat\tday\nneg\tfr\tnul\n", 3, "t.tsv").expect("valid");
        assert_eq!(rows, [["pos", "en", "great\tday"], ["neg", "fr", "nul"]]);
        let e = parse_tsv("a\tb\nonly\n", 2, "t.tsv").expect_err("short line");
        assert_eq!(e.to_string(), "t.tsv:2: expected 2 columns");
        assert!(parse_tsv("", 2, "t.tsv").expect("empty").is_empty());
    }

    #[test]
    fn tsv_files() {
        let dir = TempDir::new("data");
        let path = dir.0.join("rows.tsv");
        fs::write(&path, "en\thello there\r\nes\thola\n").expect("written");
        let rows = read_tsv(&path, 2).expect("read");
        assert_eq!(rows, [["en", "hello there"], ["es", "hola"]]);
        let missing = read_tsv(&dir.0.join("missing.tsv"), 2).expect_err("missing");
        assert!(missing.to_string().contains("missing.tsv"), "{missing}");
    }

    #[test]
    fn lexicons() {
        let vader = "good\t1.9\t0.9\t[2, 2]\n:)\t2.0\t1.1\t[]\nbroken\tx\t0\t[]\nalone\n";
        assert_eq!(vader_lexicon(vader), [("good", 1.9), (":)", 2.0)]);
        let emoji = "😀\tgrinning face\n👍🏽\tthumbs up: medium skin tone\nbad line\n";
        assert_eq!(emoji_lexicon(emoji), [('😀', "grinning face")]);
        let tweets = "1\t2.5\tSo  happy\ttoday\n2\t-1.0\n";
        assert_eq!(
            vader_tweets(tweets).collect::<Vec<_>>(),
            ["So  happy\ttoday"]
        );
        assert_eq!(collapse_whitespace("  So \t happy\n"), "So happy");
    }

    #[test]
    fn json_texts() {
        let json = r#"{"c1": {"utterances": [
            {"sender": "a", "text": "Hi! \"Bob\"\nhere"},
            {"sender": "b", "text": "caf\u00e9 \\o/"},
            {"sender": "a", "text": "   "},
            {"sender": "b", "text": "bye"}]}}"#;
        assert_eq!(
            json_text_values(json),
            ["Hi! \"Bob\" here", "café \\o/", "bye"]
        );
        assert!(json_text_values("{}").is_empty());
        assert!(chitchat_messages(None).expect("no data folder").is_empty());
        assert!(english_sources(None).is_empty());
    }
}
