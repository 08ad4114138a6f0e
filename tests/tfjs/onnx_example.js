// Decodes the latent point (1, -1) with clvae's ONNX decoder in ONNX Runtime for Node.js.
// npm install onnxruntime-node; node onnx_example.js DIR/decoder.onnx
const ort = require('onnxruntime-node');

async function main(path) {
  const decoder = await ort.InferenceSession.create(path);
  const z = new ort.Tensor('float32', Float32Array.from([1, -1]), [1, 2]); // [N, L]
  const { image } = await decoder.run({ z }); // [N, C, H, W], values in 0..1
  console.log(JSON.stringify({ dims: image.dims, pixels: Array.from(image.data) }));
}

main(process.argv[2]);
