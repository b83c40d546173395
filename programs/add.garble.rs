// add: the sum of three parties' private u32 values. Nobody learns another party's value,
// only the sum (the program panics with an overflow if the sum does not fit in a u32).
//
// Example:
//     mpc run programs/add.garble.rs --input 1u32 --input 2u32 --input 3u32
//     6

pub fn main(x: u32, y: u32, z: u32) -> u32 {
    x + y + z
}
