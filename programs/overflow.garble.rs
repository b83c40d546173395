// overflow: the sum of two parties' private u8 values. It panics when the sum exceeds 255,
// which shows how a panic inside the circuit is reported (as `garble run` reports it).
//
// Examples:
//     mpc run programs/overflow.garble.rs --input 100u8 --input 55u8
//     155
//     mpc run programs/overflow.garble.rs --input 200u8 --input 100u8
//     Panic due to Overflow on line 11:5. (then the highlighted source lines, on stderr)

pub fn main(x: u8, y: u8) -> u8 {
    x + y
}
