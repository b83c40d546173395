//! The circuit as the engine consumes it: a small [`CircuitShape`] known up front (input
//! widths, registers, outputs, counts) and the instructions as a stream ([`InstSource`]),
//! read block by block, so that a party's memory does not grow with the number of
//! instructions. A whole in-memory [`Circuit`] is one such stream ([`SliceSource`]); the
//! program layer supplies others (e.g. read from the compile cache on disk), and the engine
//! never does I/O itself.
//!
//! Because a stream is only seen once, the engine checks every instruction as it arrives
//! ([`Instructions`]): the checks of garble_lang's `Circuit::validate` (registers in
//! range and written before they are read, inputs first and in place) plus the counts the
//! shape announced, so that a stream that changed since its shape was read stops the run
//! with a clear error instead of indexing out of bounds or taking the wrong amount of
//! preprocessed material.

use garble_lang::register_circuit::{And, Circuit, Input, Inst, Not, Op, Reg, Xor};

use crate::engine::EngineError;

/// Most instructions a [`SliceSource`] hands out at once.
const SLICE_BLOCK: usize = 1 << 16;

/// What the engine needs of a circuit before its instructions: everything but them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitShape {
    /// Input bits per party.
    pub input_regs: Vec<usize>,
    /// Registers the instructions use (every register is below this).
    pub max_reg_count: usize,
    /// Registers holding the output bits at the end.
    pub output_regs: Vec<Reg>,
    /// Number of AND instructions.
    pub and_ops: usize,
    /// Number of instructions, inputs included.
    pub instructions: u64,
}

impl CircuitShape {
    /// The shape of an in-memory circuit.
    pub fn of(circuit: &Circuit) -> Self {
        Self {
            input_regs: circuit.input_regs.clone(),
            max_reg_count: circuit.max_reg_count,
            output_regs: circuit.output_regs.clone(),
            and_ops: circuit.and_ops,
            instructions: circuit.insts.len() as u64,
        }
    }

    /// Input bits of all parties together (the circuit's first instructions load them).
    pub fn total_inputs(&self) -> usize {
        self.input_regs.iter().sum()
    }
}

/// Why an [`InstSource`] could not give the next instructions (e.g. an I/O error or a
/// corrupt file); its message should say what to do about it.
pub type InstSourceError = Box<dyn std::error::Error + Send + Sync>;

/// A circuit's instructions in order, a block at a time. Implemented outside the engine by
/// whatever holds the circuit (memory, a file).
pub trait InstSource: Send {
    /// Appends the next instructions (at least one) to `out`, or returns `Ok(false)` once
    /// every instruction has been given.
    fn next_block(&mut self, out: &mut Vec<Inst>) -> Result<bool, InstSourceError>;
}

/// The instructions of an in-memory circuit.
pub struct SliceSource<'a> {
    insts: &'a [Inst],
}

impl<'a> SliceSource<'a> {
    /// The instructions `insts`, in order.
    pub fn new(insts: &'a [Inst]) -> Self {
        Self { insts }
    }
}

impl InstSource for SliceSource<'_> {
    fn next_block(&mut self, out: &mut Vec<Inst>) -> Result<bool, InstSourceError> {
        if self.insts.is_empty() {
            return Ok(false);
        }
        let (block, rest) = self.insts.split_at(self.insts.len().min(SLICE_BLOCK));
        out.extend_from_slice(block);
        self.insts = rest;
        Ok(true)
    }
}

/// The error of a circuit whose input instructions are not all at its start (checked on
/// the shape, on the stream and on a whole in-memory circuit).
pub(crate) fn inputs_not_first() -> EngineError {
    EngineError::Setup("the circuit must load all inputs before its first gate".into())
}

/// Checks a shape on its own: what `Circuit::validate` checks without the instructions.
pub(crate) fn validate_shape(shape: &CircuitShape) -> Result<(), EngineError> {
    let invalid =
        |why: String| EngineError::Setup(format!("the compiled circuit is invalid: {why}"));
    if shape.input_regs.iter().all(|&i| i == 0) {
        return Err(invalid("it has no inputs".into()));
    }
    if shape.output_regs.is_empty() {
        return Err(invalid("it has no outputs".into()));
    }
    if let Some(r) = shape
        .output_regs
        .iter()
        .find(|r| r.0 as usize >= shape.max_reg_count)
    {
        return Err(invalid(format!(
            "output register {} is not below the register count {}",
            r.0, shape.max_reg_count
        )));
    }
    let total = shape.total_inputs() as u64;
    if shape.instructions < total || total > shape.max_reg_count as u64 {
        return Err(inputs_not_first());
    }
    Ok(())
}

/// The instruction stream as the online phase reads it: the inputs, then chunks of at most
/// a given number of AND gates, every instruction checked (see the module documentation).
pub(crate) struct Instructions<'a> {
    source: &'a mut dyn InstSource,
    /// The source's current block and how far it has been read.
    block: Vec<Inst>,
    at: usize,
    /// Instructions and AND gates read so far.
    read: u64,
    ands: u64,
    /// One bit per register: written yet.
    written: Vec<u64>,
    total_inputs: u64,
    input_regs: Vec<usize>,
    max_reg: usize,
    instructions: u64,
    and_ops: u64,
}

impl<'a> Instructions<'a> {
    /// Reads `source`, which must hold the instructions of a circuit of shape `shape`.
    pub(crate) fn new(shape: &CircuitShape, source: &'a mut dyn InstSource) -> Self {
        Self {
            source,
            block: Vec::new(),
            at: 0,
            read: 0,
            ands: 0,
            written: vec![0; shape.max_reg_count.div_ceil(64)],
            total_inputs: shape.total_inputs() as u64,
            input_regs: shape.input_regs.clone(),
            max_reg: shape.max_reg_count,
            instructions: shape.instructions,
            and_ops: shape.and_ops as u64,
        }
    }

    /// The next instruction, checked; `None` at the end of the stream.
    fn next(&mut self) -> Result<Option<Inst>, EngineError> {
        if self.at == self.block.len() {
            self.block.clear();
            self.at = 0;
            let more = self
                .source
                .next_block(&mut self.block)
                .map_err(EngineError::Instructions)?;
            if !more || self.block.is_empty() {
                return Ok(None);
            }
        }
        let inst = self.block[self.at];
        self.at += 1;
        self.check(&inst)?;
        self.read += 1;
        Ok(Some(inst))
    }

    fn is_written(&self, r: Reg) -> bool {
        let r = r.0 as usize;
        r < self.max_reg && self.written[r / 64] >> (r % 64) & 1 == 1
    }

    fn check(&mut self, inst: &Inst) -> Result<(), EngineError> {
        let i = self.read;
        let invalid = |why: &str| {
            EngineError::Setup(format!(
                "the compiled circuit is invalid: instruction {i} {why}"
            ))
        };
        if i >= self.instructions {
            return Err(invalid("is beyond the announced instruction count"));
        }
        let out = inst.out.0 as usize;
        if out >= self.max_reg {
            return Err(invalid("writes a register beyond the register count"));
        }
        let is_input = matches!(inst.op, Op::Input(_));
        if is_input != (i < self.total_inputs) {
            return Err(inputs_not_first());
        }
        match inst.op {
            Op::Input(Input { party, input }) => {
                if out as u64 != i {
                    return Err(invalid("loads an input into a register other than its own"));
                }
                let width = self.input_regs.get(party as usize).copied().unwrap_or(0);
                if input as usize >= width {
                    return Err(invalid("loads an input bit that no party has"));
                }
            }
            Op::Xor(Xor(a, b)) | Op::And(And(a, b)) => {
                if !self.is_written(a) || !self.is_written(b) {
                    return Err(invalid("reads a register that was not written"));
                }
                if matches!(inst.op, Op::And(_)) {
                    self.ands += 1;
                    if self.ands > self.and_ops {
                        return Err(invalid("is an AND gate beyond the announced AND count"));
                    }
                }
            }
            Op::Not(Not(a)) => {
                if !self.is_written(a) {
                    return Err(invalid("reads a register that was not written"));
                }
            }
        }
        self.written[out / 64] |= 1 << (out % 64);
        Ok(())
    }

    /// The circuit's input instructions (its first [`CircuitShape::total_inputs`]).
    pub(crate) fn inputs(&mut self) -> Result<Vec<Inst>, EngineError> {
        let mut insts = Vec::with_capacity(self.total_inputs as usize);
        while (insts.len() as u64) < self.total_inputs {
            match self.next()? {
                Some(inst) => insts.push(inst),
                None => return Err(self.ended_early()),
            }
        }
        Ok(insts)
    }

    /// The next chunk into `out` (cleared first): instructions up to and including the
    /// `chunk_ands`-th AND gate, or to the end of the circuit; returns its number of AND
    /// gates. An empty `out` means the circuit is complete (and its counts were checked).
    pub(crate) fn next_chunk(
        &mut self,
        chunk_ands: usize,
        out: &mut Vec<Inst>,
    ) -> Result<usize, EngineError> {
        out.clear();
        let mut gates = 0;
        while gates < chunk_ands {
            let Some(inst) = self.next()? else {
                if out.is_empty() {
                    self.check_complete()?;
                }
                break;
            };
            if matches!(inst.op, Op::And(_)) {
                gates += 1;
            }
            out.push(inst);
        }
        Ok(gates)
    }

    fn ended_early(&self) -> EngineError {
        EngineError::Setup(format!(
            "the circuit's instructions ended after {} of {}",
            self.read, self.instructions
        ))
    }

    fn check_complete(&self) -> Result<(), EngineError> {
        if self.read != self.instructions {
            return Err(self.ended_early());
        }
        if self.ands != self.and_ops {
            return Err(EngineError::Setup(format!(
                "the circuit has {} AND gates, not the {} it announced",
                self.ands, self.and_ops
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(out: u32, op: Op) -> Inst {
        Inst { out: Reg(out), op }
    }

    /// Two input bits, then `ands` AND gates and an XOR after each.
    fn circuit(ands: usize) -> Circuit {
        let mut insts = vec![
            inst(0, Op::Input(Input { party: 0, input: 0 })),
            inst(1, Op::Input(Input { party: 1, input: 0 })),
        ];
        for _ in 0..ands {
            insts.push(inst(2, Op::And(And(Reg(0), Reg(1)))));
            insts.push(inst(0, Op::Xor(Xor(Reg(2), Reg(1)))));
        }
        Circuit {
            input_regs: vec![1, 1],
            insts,
            max_reg_count: 3,
            output_regs: vec![Reg(0)],
            and_ops: ands,
        }
    }

    #[test]
    fn chunks_end_after_their_last_and_gate_and_cover_the_circuit() {
        let c = circuit(5);
        let shape = CircuitShape::of(&c);
        let mut source = SliceSource::new(&c.insts);
        let mut ins = Instructions::new(&shape, &mut source);
        assert_eq!(ins.inputs().unwrap(), c.insts[..2]);
        let mut chunk = Vec::new();
        let mut seen = c.insts[..2].to_vec();
        let mut sizes = Vec::new();
        loop {
            let gates = ins.next_chunk(2, &mut chunk).unwrap();
            if chunk.is_empty() {
                break;
            }
            sizes.push((chunk.len(), gates));
            seen.extend_from_slice(&chunk);
        }
        assert_eq!(seen, c.insts);
        assert_eq!(sizes, vec![(3, 2), (4, 2), (3, 1)]);
    }

    fn run_all(shape: &CircuitShape, insts: &[Inst]) -> Result<(), EngineError> {
        let mut source = SliceSource::new(insts);
        let mut ins = Instructions::new(shape, &mut source);
        ins.inputs()?;
        let mut chunk = Vec::new();
        ins.next_chunk(usize::MAX, &mut chunk)?;
        while !chunk.is_empty() {
            ins.next_chunk(usize::MAX, &mut chunk)?;
        }
        Ok(())
    }

    #[test]
    fn a_stream_that_differs_from_its_shape_is_refused() {
        let c = circuit(3);
        let shape = CircuitShape::of(&c);
        run_all(&shape, &c.insts).unwrap();
        let short = run_all(&shape, &c.insts[..5]).unwrap_err().to_string();
        assert!(short.contains("ended after 5 of 8"), "{short}");
        let mut bad = c.insts.clone();
        bad[4].out = Reg(3);
        let e = run_all(&shape, &bad).unwrap_err().to_string();
        assert!(e.contains("instruction 4 writes a register beyond"), "{e}");
        let mut bad = c.insts.clone();
        bad[2].op = Op::And(And(Reg(0), Reg(2)));
        let e = run_all(&shape, &bad).unwrap_err().to_string();
        assert!(
            e.contains("instruction 2 reads a register that was not written"),
            "{e}"
        );
        let mut more = shape.clone();
        more.and_ops = 2;
        let e = run_all(&more, &c.insts).unwrap_err().to_string();
        assert!(e.contains("beyond the announced AND count"), "{e}");
        let mut bad = c.insts.clone();
        bad[5] = inst(1, Op::Input(Input { party: 1, input: 0 }));
        let e = run_all(&shape, &bad).unwrap_err().to_string();
        assert!(e.contains("load all inputs before its first gate"), "{e}");
    }
}
