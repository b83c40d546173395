// sha256: the SHA-256 compression function (FIPS 180-4, section 6.2.2) between two parties.
// Party 0 holds a 512-bit message block (16 big-endian u32 words), party 1 a chaining value
// (8 u32 words); both learn the next chaining value and nothing else. A real use: party 1's
// chaining value is the state after its secret 64-byte key block, the inner state of
// HMAC-SHA256 (RFC 2104), and party 0's block is its padded message: together they compute
// the inner hash without either revealing its part. With the initial hash value as chaining
// value it hashes a one-block message; the FIPS 180-4 example "abc" (padded: 0x61626380, 14
// zero words, then the bit length 24) gives SHA-256("abc") =
// ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad, printed in decimal:
//
// Example:
//     mpc run programs/sha256.garble.rs \
//         --input '[1633837952u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 24u32]' \
//         --input '[1779033703u32, 3144134277u32, 1013904242u32, 2773480762u32, 1359893119u32, 2600822924u32, 528734635u32, 1541459225u32]'
//     [3128432319, 2399260650, 1094795486, 1571693091, 2953011619, 2518121116, 3021012833, 4060091821]
//
// `mpc check programs/sha256.garble.rs --bristol-out sha256.txt` exports it as a Bristol
// Fashion circuit with the interface of the usual sha256.txt (input 0: the block, input 1: the
// chaining value, output: the next chaining value, all as big-endian hex).
//
// Additions modulo 2^32 use `add` below, a ripple-carry adder with one AND gate per bit:
// Garble's `+` checks for overflow (a panic) and spends three AND gates per bit.

pub fn main(block: [u32; 16], chaining: [u32; 8]) -> [u32; 8] {
    let k = [
        1116352408u32, 1899447441u32, 3049323471u32, 3921009573u32, 961987163u32, 1508970993u32,
        2453635748u32, 2870763221u32, 3624381080u32, 310598401u32, 607225278u32, 1426881987u32,
        1925078388u32, 2162078206u32, 2614888103u32, 3248222580u32, 3835390401u32, 4022224774u32,
        264347078u32, 604807628u32, 770255983u32, 1249150122u32, 1555081692u32, 1996064986u32,
        2554220882u32, 2821834349u32, 2952996808u32, 3210313671u32, 3336571891u32, 3584528711u32,
        113926993u32, 338241895u32, 666307205u32, 773529912u32, 1294757372u32, 1396182291u32,
        1695183700u32, 1986661051u32, 2177026350u32, 2456956037u32, 2730485921u32, 2820302411u32,
        3259730800u32, 3345764771u32, 3516065817u32, 3600352804u32, 4094571909u32, 275423344u32,
        430227734u32, 506948616u32, 659060556u32, 883997877u32, 958139571u32, 1322822218u32,
        1537002063u32, 1747873779u32, 1955562222u32, 2024104815u32, 2227730452u32, 2361852424u32,
        2428436474u32, 2756734187u32, 3204031479u32, 3329325298u32,
    ];

    // The message schedule W_0..W_63 (FIPS 180-4, 6.2.2 step 1).
    let mut w = [0u32; 64];
    for t in 0usize..16usize {
        w[t] = block[t];
    }
    for t in 16usize..64usize {
        w[t] = add(
            add(small_sigma1(w[t - 2usize]), w[t - 7usize]),
            add(small_sigma0(w[t - 15usize]), w[t - 16usize]),
        );
    }

    // The 64 rounds (steps 2 and 3).
    let mut a = chaining[0];
    let mut b = chaining[1];
    let mut c = chaining[2];
    let mut d = chaining[3];
    let mut e = chaining[4];
    let mut f = chaining[5];
    let mut g = chaining[6];
    let mut h = chaining[7];
    for t in 0usize..64usize {
        let t1 = add(add(add(h, big_sigma1(e)), add(ch(e, f, g), k[t])), w[t]);
        let t2 = add(big_sigma0(a), maj(a, b, c));
        h = g;
        g = f;
        f = e;
        e = add(d, t1);
        d = c;
        c = b;
        b = a;
        a = add(t1, t2);
    }

    // The next chaining value (step 4).
    [
        add(a, chaining[0]),
        add(b, chaining[1]),
        add(c, chaining[2]),
        add(d, chaining[3]),
        add(e, chaining[4]),
        add(f, chaining[5]),
        add(g, chaining[6]),
        add(h, chaining[7]),
    ]
}

// x + y modulo 2^32. The carry into bit i+1 is the majority of bit i of x, y and the carry into
// bit i, which costs one AND gate: maj(x, y, c) = c ^ ((x ^ c) & (y ^ c)).
fn add(x: u32, y: u32) -> u32 {
    let mut carries = 0u32;
    for i in 0u8..31u8 {
        let xi = (x >> i) & 1u32;
        let yi = (y >> i) & 1u32;
        let ci = (carries >> i) & 1u32;
        let carry = ci ^ ((xi ^ ci) & (yi ^ ci));
        carries = carries | (carry << (i + 1u8));
    }
    x ^ y ^ carries
}

// Rotation to the right by n bits (0 < n < 32).
fn rotr(x: u32, n: u8) -> u32 {
    (x >> n) | (x << (32u8 - n))
}

// Ch(x, y, z) = (x AND y) XOR (NOT x AND z), with one AND gate per bit.
fn ch(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}

// Maj(x, y, z) = (x AND y) XOR (x AND z) XOR (y AND z), with one AND gate per bit.
fn maj(x: u32, y: u32, z: u32) -> u32 {
    y ^ ((x ^ y) & (y ^ z))
}

fn big_sigma0(x: u32) -> u32 {
    rotr(x, 2u8) ^ rotr(x, 13u8) ^ rotr(x, 22u8)
}

fn big_sigma1(x: u32) -> u32 {
    rotr(x, 6u8) ^ rotr(x, 11u8) ^ rotr(x, 25u8)
}

fn small_sigma0(x: u32) -> u32 {
    rotr(x, 7u8) ^ rotr(x, 18u8) ^ (x >> 3u8)
}

fn small_sigma1(x: u32) -> u32 {
    rotr(x, 17u8) ^ rotr(x, 19u8) ^ (x >> 10u8)
}
