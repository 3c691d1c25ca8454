//! Trains one of the built-in models, prints its evaluation and writes the model file: the command line
//! of [`colloquy_textmodels::recipes`] (flags in its documentation). `scripts/models/train.sh` runs it
//! for the three models.

fn main() -> std::process::ExitCode {
    colloquy_textmodels::recipes::main()
}
