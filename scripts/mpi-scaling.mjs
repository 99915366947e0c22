// mpi-scaling.mjs - the README's scaling table for data-parallel training over Open MPI, on
// paper: the time of one training step on P nodes joined by a 10, 25 or 100 Gb/s link, from
// what was measured on one machine (scripts/bench-mpi.sh, results/bench-mpi.txt) and the bytes
// cli/front_mpi.c sends. Assumptions, each stated where it is used:
//   - a node trains its share of the batch at NODE_RATE images/s (the rate measured for this
//     2-core machine's compute, the combining taken out), whatever the share's size: the
//     real rate falls for small shares (one process in micro-batches of 8 trains at 0.85x its
//     whole-batch rate here), so the table is optimistic for many nodes;
//   - the weight gradients are every conv and linear weight and bias: GRAD_FLOATS floats; a
//     node holding h of the step's M micro-batches sends 4 * GRAD_FLOATS * (h + 1) * (P - 1) / P
//     bytes (the all-to-all of its micro-batches' slices, the allgather of its own slice) and
//     receives as much, at the link's full rate in both directions;
//   - each step makes COLLECTIVES collectives (BatchNorm 3 per layer x 7, the loss 1, 2 per
//     weight layer x 8), each costing (P - 1) messages of LATENCY seconds (linear algorithms).
// Usage: node scripts/mpi-scaling.mjs
const NODE_RATE = Number(process.env.NODE_RATE || 379); // images/s: 64 / (64 / 343 s - 17.7 ms), 2x1 micro 8 in results/bench-mpi.txt
const GRAD_FLOATS = 3251018 - 2 * 1408; // parameters less BatchNorm's gamma and beta (combined as sums)
const COLLECTIVES = 3 * 7 + 1 + 2 * 8;
const LATENCY = 10e-6; // seconds per message (Ethernet with MPI over TCP: 10-50 us; RDMA: 1-3 us)
const LINKS = [10, 25, 100]; // Gb/s

const rows = [];
for (const [batch, micro] of [[64, 8], [512, 8]])
  for (const P of [1, 2, 4, 8, 16, 32, 64]) {
    const M = Math.ceil(batch / micro);
    if (P > M) continue; // a node would hold no micro-batch
    const h = Math.ceil(M / P), images = Math.min(h * micro, batch);
    const compute = images / NODE_RATE;
    const bytes = P === 1 ? 0 : 4 * GRAD_FLOATS * (h + 1) * (P - 1) / P;
    const combine = LINKS.map((gbps) => (P === 1 ? 0 : bytes / (gbps * 1e9 / 8) + COLLECTIVES * (P - 1) * LATENCY));
    rows.push({ batch, micro, P, h, compute, bytes, combine });
  }

const ms = (s) => (s * 1e3).toFixed(s < 0.01 ? 1 : 0);
console.log('| batch, micro-batch | nodes | micro-batches per node | compute per step | MB sent per node | ' +
  LINKS.map((g) => `step at ${g} Gb/s (combining)`).join(' | ') + ' | images/s at 25 Gb/s |');
console.log('| --- | ---: | ---: | ---: | ---: | ' + LINKS.map(() => '---:').join(' | ') + ' | ---: |');
for (const r of rows) {
  const steps = r.combine.map((c) => r.compute + c);
  const cells = steps.map((t, i) => `${ms(t)} ms (${Math.round((100 * r.combine[i]) / t)}%)`);
  console.log(`| ${r.batch}, ${r.micro} | ${r.P} | ${r.h} | ${ms(r.compute)} ms | ${(r.bytes / 1e6).toFixed(1)} | ` +
    `${cells.join(' | ')} | ${Math.round(r.batch / steps[1])} |`);
}
