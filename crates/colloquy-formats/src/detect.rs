//! Which parser reads an object: by name first, then by content, unless the `format` option says.

use crate::formats::{Format, Probe};

/// Media and other files that sit beside chats in exports (WhatsApp folders, Slack uploads); never parsed.
const MEDIA_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "heic", "bmp", "tif", "tiff", "svg", "mp4", "mov", "3gp",
    "avi", "mkv", "webm", "opus", "ogg", "mp3", "m4a", "aac", "wav", "amr", "pdf", "doc", "docx",
    "xls", "xlsx", "ppt", "pptx", "vcf", "html", "htm", "css", "js", "md", "was", "tgs",
];

pub fn is_media(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.rsplit_once('.')
        .is_some_and(|(_, ext)| MEDIA_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Files to leave out of a directory listing: hidden files and folders, Spark/Hadoop markers.
pub fn is_hidden(path: &str) -> bool {
    path.split('/')
        .any(|seg| seg.starts_with('.') || seg == "_SUCCESS" || seg == "__MACOSX")
}

/// Picks the format of one decompressed, non-zip object or zip entry: by extension, then by each
/// registered format's sniffer in registry order.
pub fn detect(path: &str, data: &[u8]) -> Result<Format, String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    if let Some(f) = Format::all().find(|f| f.spec().extensions().contains(&ext)) {
        return Ok(f);
    }
    let head = &data[..data.len().min(64 * 1024)];
    let head = crate::formats::strip_bom(head);
    // Cut at a character boundary so a multi-byte character split by the 64 KiB window does not hide the text.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    let probe = Probe { path, ext, text };
    if let Some(f) = Format::all().find(|f| f.spec().sniff(&probe)) {
        return Ok(f);
    }
    let first = text.lines().next().unwrap_or("");
    if ext == "txt" || ext == "log" {
        return Err(format!(
            "cannot tell the format of '{name}': it is not a WhatsApp chat export (first line: '{}'); set OPTIONS ('format' '...') to one of {}",
            crate::time::truncate(first, 50),
            Format::names()
        ));
    }
    Err(format!(
        "cannot tell the format of '{name}' from its name or content; set OPTIONS ('format' '...') to one of {}",
        Format::names()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let name = |r: Result<Format, String>| r.map(Format::name);
        assert_eq!(name(detect("a.jsonl", b"")), Ok("jsonl"));
        assert_eq!(name(detect("x/sms.csv", b"a,b\n")), Ok("csv"));
        assert_eq!(
            name(detect(
                "_chat.txt",
                "[1/2/24, 10:00:00] Ana: hi\n".as_bytes()
            )),
            Ok("whatsapp")
        );
        assert_eq!(
            name(detect(
                "log.json",
                b"{\"text\":\"hi\"}\n{\"text\":\"yo\"}\n"
            )),
            Ok("jsonl")
        );
        let err = detect("notes.txt", b"Dear diary").expect_err("unknown");
        assert!(err.contains("not a WhatsApp chat export"), "{err}");
        assert!(is_media("WhatsApp Chat/IMG-20240101-WA0001.jpg"));
        assert!(is_hidden("exports/.DS_Store"));
    }
}
