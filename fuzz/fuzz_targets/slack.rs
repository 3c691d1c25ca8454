#![no_main]
//! Fuzzes the slack parser (see common.rs for the properties checked).
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(colloquy_formats::Format::Slack, data));
