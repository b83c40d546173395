//! `mpc check PROGRAM`: compiles (or loads from the cache) a Garble program or Bristol
//! circuit and prints, per party, its parameter name, type and bits, then the output type,
//! the gate counts, the register count, the program hash and how long loading took. With
//! `--bristol-out FILE` it also writes the program as a Bristol Fashion circuit.

use std::{fs, path::PathBuf};

use crate::program::Summary;

/// Arguments of `mpc check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The program: Garble source (`*.garble.rs`) or a Bristol Fashion circuit (`*.txt`,
    /// `*.bristol`).
    pub program: PathBuf,
    /// Also write the program as a Bristol Fashion circuit to FILE (input value i is party i's
    /// input, one output value; hex reads like the Garble values' bytes). Programs that can
    /// panic cannot be exported.
    #[arg(long, value_name = "FILE")]
    pub bristol_out: Option<PathBuf>,
    /// A party constant the program declares, PARTY_<i>::NAME=VALUE (repeat for several).
    #[arg(long = "const", value_name = "PARTY_i::NAME=VALUE", value_parser = super::inputs::parse_const)]
    pub consts: Vec<(String, String)>,
}

/// Runs `mpc check`: prints the program's summary on stdout, or fails with garble's pretty
/// compile error.
pub fn run(args: CheckArgs) -> Result<(), super::Failure> {
    let (program, report) = super::constants::load_with_all(&args.program, &args.consts, None)?;
    let how = if report.from_cache {
        "loaded from the compile cache"
    } else {
        "compiled"
    };
    let text = render(&program.summary(), &hex::encode(program.hash()));
    print!("{text}");
    println!("  load time: {:.3} s ({how})", report.elapsed.as_secs_f64());
    if let Some(out) = &args.bristol_out {
        let bristol = program.to_bristol().map_err(super::Failure::usage)?;
        fs::write(out, &bristol.text).map_err(|e| {
            super::Failure::usage(format!(
                "cannot write the Bristol Fashion circuit to {}: {e}",
                out.display()
            ))
        })?;
        println!(
            "  bristol fashion: {} ({} gates, {} AND, {} wires)",
            out.display(),
            bristol.gates,
            bristol.and_gates,
            bristol.wires
        );
    }
    Ok(())
}

/// Formats a summary as the lines that `mpc check` prints (without the load time).
pub fn render(summary: &Summary, hash_hex: &str) -> String {
    let mut out = format!(
        "{}: {} for {} parties\n",
        summary.path.display(),
        summary.kind,
        summary.parties.len()
    );
    for (i, party) in summary.parties.iter().enumerate() {
        out.push_str(&format!(
            "  party {i}: {}: {} ({} bits)\n",
            party.name, party.ty, party.bits
        ));
    }
    if summary.panic_bits > 0 {
        out.push_str(&format!(
            "  output: {} ({} bits, plus {} bits of panic information)\n",
            summary.output_type, summary.output_bits, summary.panic_bits
        ));
    } else {
        out.push_str(&format!(
            "  output: {} ({} bits)\n",
            summary.output_type, summary.output_bits
        ));
    }
    for definition in &summary.definitions {
        out.push_str(&format!("  {definition}\n"));
    }
    out.push_str(&format!(
        "  gates: {} AND, {} XOR, {} NOT\n",
        summary.and_gates, summary.xor_gates, summary.not_gates
    ));
    out.push_str(&format!("  registers: {}\n", summary.max_registers));
    out.push_str(&format!("  hash: {hash_hex}\n"));
    out
}
