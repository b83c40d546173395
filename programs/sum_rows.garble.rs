// sum_rows: each party brings a list of its own length; the lengths are party constants, which
// every party states with `--const ROWS=N` (`mpc party`) and the parties swap before
// compiling. Try: mpc run programs/sum_rows.garble.rs --const PARTY_0::ROWS=2 \
//   --const PARTY_1::ROWS=3 --input "[1u32, 2u32]" --input "[30u32, 40u32, 50u32]"
//   123
const ROWS_0: usize = PARTY_0::ROWS;
const ROWS_1: usize = PARTY_1::ROWS;

pub fn main(a: [u32; ROWS_0], b: [u32; ROWS_1]) -> u32 {
    let mut sum = 0u32;
    for x in a {
        sum = sum + x;
    }
    for y in b {
        sum = sum + y;
    }
    sum
}
