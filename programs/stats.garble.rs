// stats: three parties learn the maximum, minimum and sum of their private u32 values
// (for example salaries) and nothing else. The sum is a u64, so it never overflows.
//
// Example:
//     mpc run programs/stats.garble.rs --input 4000u32 --input 5500u32 --input 3000u32
//     Stats {max: 5500, min: 3000, sum: 12500}

struct Stats {
    max: u32,
    min: u32,
    sum: u64,
}

pub fn main(a: u32, b: u32, c: u32) -> Stats {
    let mut max = a;
    let mut min = a;
    for x in [b, c] {
        if x > max {
            max = x;
        }
        if x < min {
            min = x;
        }
    }
    Stats {
        max,
        min,
        sum: (a as u64) + (b as u64) + (c as u64),
    }
}
