// join: private set intersection cardinality. Each of two parties holds a list of 8 u32 ids
// (for example customer numbers); both learn only how many of party 0's ids also appear in
// party 1's list, not which ones. Party 0's ids should be distinct (a repeated id is counted
// once per occurrence); the lists need not be sorted.
//
// Example:
//     mpc run programs/join.garble.rs \
//         --input '[1u32, 2u32, 3u32, 4u32, 5u32, 6u32, 7u32, 8u32]' \
//         --input '[2u32, 4u32, 6u32, 8u32, 10u32, 12u32, 14u32, 16u32]'
//     4

pub fn main(ids0: [u32; 8], ids1: [u32; 8]) -> u8 {
    let mut common = 0u8;
    for a in ids0 {
        let mut found = false;
        for b in ids1 {
            found = found | (a == b);
        }
        if found {
            common = common + 1u8;
        }
    }
    common
}
