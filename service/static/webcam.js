// The webcam as a source of frames, one at a time: the next frame is taken only when the handler of the
// last one has finished, so the page goes exactly as fast as the service answers.

const JPEG_QUALITY = 0.85;

/** Why the webcam cannot be used here, or null when it can. */
export function webcamUnavailableReason() {
  if (!window.isSecureContext) {
    return "the webcam needs a secure page: open it as http://localhost:PORT or over HTTPS";
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    return "this browser gives pages no webcam access";
  }
  return null;
}

export class Webcam {
  #video = document.createElement("video");
  #stream = null;
  // Identifies the current start(); a loop left over from an earlier start sees it changed and ends.
  #session = null;

  get running() {
    return this.#session !== null;
  }

  /**
   * Open the camera, then call ``handleFrame(jpegFile, bitmap)`` frame after frame until ``stop()`` or until
   * the handler resolves to false. Rejects when the camera cannot be opened; a later failure to grab a
   * frame stops the camera and goes to ``handleFailure(error)``.
   */
  async start(handleFrame, handleFailure) {
    this.stop();
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    const session = {};
    this.#session = session;
    this.#stream = stream;
    this.#video.muted = true;
    this.#video.playsInline = true;
    this.#video.srcObject = stream;
    try {
      await this.#video.play();
    } catch (error) {
      this.stop();
      throw error;
    }
    this.#loop(session, handleFrame).catch((error) => {
      if (this.#session === session) {
        this.stop();
        handleFailure(error);
      }
    });
  }

  stop() {
    this.#session = null;
    this.#stream?.getTracks().forEach((track) => track.stop());
    this.#stream = null;
    this.#video.srcObject = null;
  }

  async #loop(session, handleFrame) {
    while (this.#session === session) {
      const bitmap = await createImageBitmap(this.#video);
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
      const frame = new File([jpeg], "webcam.jpg", { type: "image/jpeg" });
      if (this.#session !== session || !(await handleFrame(frame, bitmap))) {
        break;
      }
    }
    if (this.#session === session) {
      this.stop();
    }
  }
}
