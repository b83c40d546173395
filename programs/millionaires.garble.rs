// millionaires: Yao's millionaires' problem. Two parties learn who of them is richer (or that
// they are equally rich) without revealing their wealth to each other.
//
// Example:
//     mpc run programs/millionaires.garble.rs --input 5000000u64 --input 7000000u64
//     Richer::Party1

enum Richer {
    Party0,
    Party1,
    Tie,
}

pub fn main(wealth0: u64, wealth1: u64) -> Richer {
    if wealth0 > wealth1 {
        Richer::Party0
    } else if wealth1 > wealth0 {
        Richer::Party1
    } else {
        Richer::Tie
    }
}
