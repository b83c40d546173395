// big: a benchmark program of about one million AND gates (1,074,784). Party 0 holds a
// 32x32 matrix of u16 values, party 1 a vector of 32 u16 values; both learn the product
// (32 dot products of 32 terms each, as u64 so it never overflows).
//
// Example (every entry 3 times every element 5, summed over 32 columns: 480):
//     mpc run programs/big.garble.rs --input '[[3u16; 32]; 32]' --input '[5u16; 32]'
//     [480, 480, ..., 480]

pub fn main(matrix: [[u16; 32]; 32], vector: [u16; 32]) -> [u64; 32] {
    let mut result = [0u64; 32];
    let mut row = 0usize;
    for entries in matrix {
        let mut acc = 0u64;
        let mut col = 0usize;
        for m in entries {
            acc = acc + ((m as u32) * (vector[col] as u32)) as u64;
            col = col + 1usize;
        }
        result[row] = acc;
        row = row + 1usize;
    }
    result
}
