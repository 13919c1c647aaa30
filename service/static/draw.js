// Drawing an API result over its image: boxes with scores, the five landmarks, mesh points, pose axes, crops,
// and each face's landmark source, pose and quality figures.

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
    if (face.pose) {
      drawPoseAxes(context, face, unit);
    }
  }
}

// The head's x (to the image's right), y (up) and z (towards the camera) axes, coloured as most 3D tools do.
export const POSE_AXES = [
  { axis: [1, 0, 0], colour: "#ff3b30" },
  { axis: [0, 1, 0], colour: "#34c759" },
  { axis: [0, 0, 1], colour: "#0a84ff" },
];

/**
 * The head's axes from the nose (or the box centre): the API's pose is AFLW2000-3D's Pose_Para, the rotation
 * Rx(-pitch) Ry(-yaw) Rz(-roll) from the head's frame (y up, z towards the viewer) to the camera's; the image's
 * y runs down, so the drawn y is the rotated one negated.
 */
function drawPoseAxes(context, face, unit) {
  const [x1, y1, x2, y2] = face.box;
  const [cx, cy] = face.landmarks?.[2] ?? [(x1 + x2) / 2, (y1 + y2) / 2];
  const length = 0.5 * (x2 - x1);
  const rotation = poseRotation(face.pose);
  context.lineWidth = Math.max(2, Math.round(unit * 1.5));
  for (const { axis, colour } of POSE_AXES) {
    const [dx, dy] = rotation.map((row) => row[0] * axis[0] + row[1] * axis[1] + row[2] * axis[2]);
    context.strokeStyle = colour;
    context.beginPath();
    context.moveTo(cx, cy);
    context.lineTo(cx + length * dx, cy - length * dy);
    context.stroke();
  }
}

function poseRotation({ pitch, yaw, roll }) {
  const [a, b, c] = [pitch, yaw, roll].map((degrees) => (-degrees * Math.PI) / 180);
  const rx = [[1, 0, 0], [0, Math.cos(a), -Math.sin(a)], [0, Math.sin(a), Math.cos(a)]];
  const ry = [[Math.cos(b), 0, Math.sin(b)], [0, 1, 0], [-Math.sin(b), 0, Math.cos(b)]];
  const rz = [[Math.cos(c), -Math.sin(c), 0], [Math.sin(c), Math.cos(c), 0], [0, 0, 1]];
  return multiply(rx, multiply(ry, rz));
}

function multiply(p, q) {
  return p.map((row) => q[0].map((_, j) => row.reduce((sum, value, k) => sum + value * q[k][j], 0)));
}

/** Per face: its score, where its landmarks came from, its pose and its quality figures (when returned). */
export function showFaceDetails(list, faces) {
  list.replaceChildren(
    ...faces
      .filter((face) => face.landmarks_source || face.pose || face.quality)
      .map((face) => {
        const item = document.createElement("li");
        const parts = [`score ${face.score.toFixed(2)}`];
        if (face.landmarks_source) {
          parts.push(`landmarks: ${face.landmarks_source}`);
        }
        if (face.pose) {
          const { yaw, pitch, roll } = face.pose;
          parts.push(`yaw ${yaw.toFixed(1)}°, pitch ${pitch.toFixed(1)}°, roll ${roll.toFixed(1)}°`);
        }
        if (face.quality) {
          const q = face.quality;
          parts.push(
            `${q.usable ? "usable" : "not usable"}: sharpness ${q.sharpness.toFixed(3)}, brightness ` +
              `${q.brightness.toFixed(2)}, eyes ${q.inter_ocular.toFixed(0)} px` +
              (q.frontalness === undefined ? "" : `, frontalness ${q.frontalness.toFixed(2)}`),
          );
          item.dataset.usable = String(q.usable);
        }
        item.textContent = parts.join(" · ");
        return item;
      }),
  );
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
