// Loads a TF.js layers model the way a web page does, tf.loadLayersModel(URL), and prints
// its input shape and its predictions for the given inputs as JSON.
// usage: node predict.js http://HOST:PORT/model.json '[[z0, z1], ...]'
const tf = require('@tensorflow/tfjs');

(async () => {
  const [url, inputs] = process.argv.slice(2);
  const model = await tf.loadLayersModel(url);
  const out = model.predict(tf.tensor2d(JSON.parse(inputs))).arraySync();
  console.log(JSON.stringify({ inputShape: model.inputs[0].shape, out }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
