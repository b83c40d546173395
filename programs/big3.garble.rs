// big3: the three-party variant of big.garble.rs, about one million AND gates. Party 0
// holds a 32x32 matrix of u16 values, parties 1 and 2 each a vector of 32 u16 values; all
// learn the product of the matrix with the XOR of the two vectors.
//
// Example (3 * (5 ^ 1) = 12, summed over 32 columns: 384):
//     mpc run programs/big3.garble.rs --input '[[3u16; 32]; 32]' --input '[5u16; 32]' --input '[1u16; 32]'
//     [384, 384, ..., 384]

pub fn main(matrix: [[u16; 32]; 32], v: [u16; 32], w: [u16; 32]) -> [u64; 32] {
    let mut result = [0u64; 32];
    let mut row = 0usize;
    for entries in matrix {
        let mut acc = 0u64;
        let mut col = 0usize;
        for m in entries {
            acc = acc + ((m as u32) * ((v[col] ^ w[col]) as u32)) as u64;
            col = col + 1usize;
        }
        result[row] = acc;
        row = row + 1usize;
    }
    result
}
