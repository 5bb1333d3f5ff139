// face-api.js's own FaceExpressionNet on 112x112 RGB faces (tfjs, pure-JavaScript CPU backend):
// the reference that scripts/check_faceapi_port.py compares fercnn's port with.
//   npm install --prefix DIR @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0
//   node scripts/faceapi_reference.js DIR FACES.bin N OUT.json
// FACES.bin: N x 112 x 112 x 3 float32 (little-endian, 0..255). OUT.json: N lists of 7
// probabilities in face-api.js's order (neutral, happy, sad, angry, fearful, disgusted, surprised).
const fs = require('fs');
const path = require('path');

async function main() {
  const [dir, facesPath, n, outPath] = process.argv.slice(2);
  const faceapi = require(path.resolve(dir, 'node_modules/@vladmandic/face-api/dist/face-api.node-wasm.js'));
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.resolve(dir, 'node_modules/@vladmandic/face-api/model');
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'face_expression_model-weights_manifest.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(modelDir, 'face_expression_model.bin'));
  const net = faceapi.nets.faceExpressionNet;
  net.loadFromWeightMap(tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), manifest[0].weights));
  const raw = fs.readFileSync(facesPath);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const faces = tf.unstack(tf.tensor4d(data, [Number(n), 112, 112, 3], 'float32'));
  // an array of 3D tensors: toNetInput refuses one 4D tensor holding more than one image
  const probs = net.forwardInput(await faceapi.toNetInput(faces)).arraySync();
  fs.writeFileSync(outPath, JSON.stringify(probs));
  console.log(`tfjs ${tf.version.tfjs} (${tf.getBackend()}), face-api ${faceapi.version}: ${probs.length} faces`);
}
main().catch((e) => { console.error(e.message); process.exit(1); });
