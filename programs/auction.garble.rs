// auction: a sealed-bid second-price (Vickrey) auction among 4 bidders. Each party is one
// bidder with a private u32 bid (`main` takes one array, so element i is party i's input).
// Everyone learns only the winner (the highest bid, the lowest index on a tie) and the price
// the winner pays: the second-highest bid.
//
// Example:
//     mpc run programs/auction.garble.rs --input 100u32 --input 250u32 --input 180u32 --input 90u32
//     Sale {price: 180, winner: 1}

struct Sale {
    winner: u8,
    price: u32,
}

pub fn main(bids: [u32; 4]) -> Sale {
    let mut winner = 0u8;
    let mut highest = 0u32;
    let mut second = 0u32;
    let mut bidder = 0u8;
    for bid in bids {
        if bid > highest {
            second = highest;
            highest = bid;
            winner = bidder;
        } else if bid > second {
            second = bid;
        }
        bidder = bidder + 1u8;
    }
    Sale {
        winner,
        price: second,
    }
}
