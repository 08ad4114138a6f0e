// Runs an ONNX model with ONNX Runtime for Node.js (CPU) and prints its inputs' and outputs'
// declared shapes and its outputs as JSON, for tests/test_onnx.py.
// usage: node onnx_run.js MODEL.onnx < '{"z": {"dims": [n, 2], "data": [...]}, ...}'
const fs = require('fs');
const ort = require('onnxruntime-node');

(async () => {
  const session = await ort.InferenceSession.create(process.argv[2]);
  const feeds = {};
  for (const [name, t] of Object.entries(JSON.parse(fs.readFileSync(0, 'utf8')))) {
    feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  }
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(results)) outputs[name] = { dims: t.dims, data: Array.from(t.data) };
  const meta = (m) => ({ name: m.name, shape: m.shape });
  console.log(JSON.stringify({
    inputs: session.inputMetadata.map(meta), outputs: session.outputMetadata.map(meta), results: outputs,
  }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
