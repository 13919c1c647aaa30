// Drawing an API result over its image: boxes with scores, the five landmarks, mesh points, crops.

const BOX_COLOUR = "#00e5ff";
const LABEL_TEXT_COLOUR = "#002b33";
const MESH_COLOUR = "rgba(255, 255, 255, 0.75)";

// In the API's order of faces[].landmarks.
export const LANDMARKS = [
  { name: "left eye", colour: "#ff2d55" },
  { name: "right eye", colour: "#34c759" },
  { name: "nose", colour: "#ffcc00" },
  { name: "left mouth corner", colour: "#af52de" },
  { name: "right mouth corner", colour: "#ff9500" },
];

/** Draw the image at its own size, then the faces of ``result`` (null: the image alone). */
export function drawResult(canvas, image, result) {
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  // Lines, dots and labels keep their on-screen size whatever the photo's resolution.
  const unit = Math.max(1, Math.min(image.width, image.height) / 400);
  for (const face of result?.faces ?? []) {
    if (face.mesh) {
      drawMesh(context, face.mesh, unit);
    }
    drawBox(context, face, unit);
    if (face.landmarks) {
      drawLandmarks(context, face.landmarks, unit);
    }
  }
}

function drawBox(context, face, unit) {
  const [x1, y1, x2, y2] = face.box;
  context.lineWidth = Math.max(2, Math.round(unit * 1.5));
  context.strokeStyle = BOX_COLOUR;
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  const label = face.score.toFixed(2);
  const fontSize = Math.round(10 * unit);
  context.font = `${fontSize}px system-ui, sans-serif`;
  const padding = Math.round(2 * unit);
  const width = context.measureText(label).width + 2 * padding;
  const height = fontSize + 2 * padding;
  // Above the box, or inside it when the box touches the top of the image.
  const top = y1 - height >= 0 ? y1 - height : y1;
  context.fillStyle = BOX_COLOUR;
  context.fillRect(x1, top, width, height);
  context.fillStyle = LABEL_TEXT_COLOUR;
  context.textBaseline = "top";
  context.fillText(label, x1 + padding, top + padding);
}

function drawLandmarks(context, points, unit) {
  points.forEach(([x, y], index) => {
    context.fillStyle = LANDMARKS[index].colour;
    context.beginPath();
    context.arc(x, y, 2 * unit, 0, 2 * Math.PI);
    context.fill();
  });
}

function drawMesh(context, vertices, unit) {
  context.fillStyle = MESH_COLOUR;
  const size = Math.max(1.5, unit);
  for (const [x, y] of vertices) {
    context.fillRect(x - size / 2, y - size / 2, size, size);
  }
}

/** One 112x112 aligned crop per face, with its score, in the strip below the image. */
export function showCrops(strip, faces) {
  strip.replaceChildren(
    ...faces
      .filter((face) => face.crop)
      .map((face) => {
        const figure = document.createElement("figure");
        const image = document.createElement("img");
        image.src = `data:image/png;base64,${face.crop}`;
        image.alt = `aligned face, score ${face.score.toFixed(2)}`;
        const caption = document.createElement("figcaption");
        caption.textContent = face.score.toFixed(2);
        figure.append(image, caption);
        return figure;
      }),
  );
}
