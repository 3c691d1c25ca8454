//! Finding and loading the ONNX Runtime library, once per process.
//!
//! `ort` is built with `load-dynamic`: nothing is downloaded or linked at build time, and the library is
//! looked up at the first `CREATE FUNCTION ... LANGUAGE ONNX`: `ORT_DYLIB_PATH`, then the `onnxruntime`
//! Python package (`pip install onnxruntime`), then `libonnxruntime.so` on the loader's path. ONNX Runtime
//! allows one environment per process, so it lives in a static and is never dropped.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::{OnnxError, Result};

static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

const HOW_TO_INSTALL: &str = "install ONNX Runtime 1.31 or newer (`pip install onnxruntime`, which colloquy finds through `python3`), or set ORT_DYLIB_PATH to the library file (e.g. .../site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0)";

/// The process's ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static Environment> {
    ENVIRONMENT
        .get_or_init(load)
        .as_ref()
        .map_err(|e| OnnxError::Runtime(e.clone()))
}

fn load() -> std::result::Result<Environment, String> {
    let mut tried = Vec::new();
    for candidate in candidates() {
        match ort::init_from(&candidate) {
            Ok(builder) => {
                return builder.with_name("colloquy").build().map_err(|e| {
                    format!("ONNX Runtime at {candidate} loaded but did not start: {e}")
                });
            }
            Err(e) => tried.push(format!("{candidate}: {e}")),
        }
    }
    Err(format!(
        "ONNX Runtime is not available ({}); {HOW_TO_INSTALL}",
        if tried.is_empty() {
            "nothing to try".to_string()
        } else {
            format!("tried {}", tried.join("; "))
        }
    ))
}

/// Where the library may be, in the order tried.
fn candidates() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(p.to_string_lossy().into_owned());
        // An explicit path is the user's choice: do not fall back to another library behind their back.
        return out;
    }
    out.extend(python_package_libraries());
    out.push("libonnxruntime.so".to_string());
    out
}

/// `libonnxruntime.so*` inside the `onnxruntime` package of the `python3` on PATH (the wheel ships only
/// the versioned file name).
fn python_package_libraries() -> Vec<String> {
    let script = "import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))";
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", script])
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut libs: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    libs.sort();
    libs
}
