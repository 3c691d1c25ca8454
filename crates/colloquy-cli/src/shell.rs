//! The interactive shell: statements end with ';', history is kept between sessions.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::runner::Runner;

fn history_path() -> Option<std::path::PathBuf> {
    crate::demo::cache_dir().ok().map(|d| d.join("history.txt"))
}

pub async fn run(runner: &Runner) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    // History is a convenience: a missing (first run) or unwritable file must not stop the shell.
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    eprintln!(
        "colloquy {} — end statements with ';', \\q to quit, \\d to list tables",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "colloquy> "
        } else {
            "      ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && trimmed.starts_with('\\') {
                    let _ = editor.add_history_entry(trimmed);
                    match trimmed {
                        "\\q" | "\\quit" => break,
                        "\\d" => report(runner.run_script("SHOW TABLES", "\\d").await),
                        cmd if cmd.starts_with("\\d ") => {
                            let table = cmd[3..].trim();
                            report(runner.run_script(&format!("DESCRIBE {table}"), "\\d").await)
                        }
                        other => eprintln!(
                            "unknown command {other}; \\q quits, \\d lists tables, \\d NAME describes one"
                        ),
                    }
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if trimmed.ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    report(runner.run_script(&buffer, "shell").await);
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    Ok(())
}

/// In the shell an error is printed and the session goes on.
fn report(r: anyhow::Result<()>) {
    if let Err(e) = r {
        eprintln!("Error: {}", crate::error_text(&e));
    }
}
