//! The trainer's former entry point, kept so that `cargo run --example train` and
//! `scripts/models/train.sh` keep working: the trainer is the `train-models` binary now
//! (`src/bin/train-models.rs`, recipes in `src/recipes/`), with the same command line.

fn main() -> std::process::ExitCode {
    colloquy_textmodels::recipes::main()
}
