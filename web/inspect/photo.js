/**
 * photo.js: the buyer's full-resolution photo, and its transfer over the "evidence" data channel.
 *
 * The still is taken natively where the browser can (`ImageCapture.takePhoto()`, the camera's own
 * photo pipeline, often larger than any video mode), else from the full-resolution track
 * (`grabFrame()`), else by drawing the local preview (which plays the track at capture size) on a
 * canvas. The live video keeps running throughout.
 *
 * The channel protocol (media/evidence_channel.py on the worker): one text header
 *   {"type": "photo", "request", "content_type", "bytes", "width", "height", "method"}
 * then the bytes as binary messages of at most 64 KiB, sent only while the channel's buffer is
 * low (the video shares the connection), then the worker answers {"type": "stored", "request",
 * "artifact"} or {"type": "error", "code", "message", "request"}. {"type": "cancel"} aborts.
 * One transfer at a time.
 */

export const CHUNK_BYTES = 64 * 1024;
const BUFFER_HIGH = 512 * 1024; // stop queueing above this...
const BUFFER_LOW = 128 * 1024; // ...until the buffer drains below this
const CHANNEL_WAIT_MS = 20_000;
const REPLY_WAIT_MS = 60_000;
const TYPES = new Set(["image/jpeg", "image/png", "image/webp"]);

/** A failed capture or transfer; `reason` is for the seller's console (English). */
export class PhotoError extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

function canvasBlob(canvas, type = "image/jpeg", quality = 0.92) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new PhotoError("the image could not be encoded"))),
      type, quality);
  });
}

async function bitmapToPhoto(bitmap, method) {
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  if (typeof bitmap.close === "function") bitmap.close();
  return { blob: await canvasBlob(canvas), width: canvas.width, height: canvas.height, method };
}

async function takePhoto(track) {
  const capture = new window.ImageCapture(track);
  let settings;
  try {
    const caps = await capture.getPhotoCapabilities();
    if (caps.imageWidth && caps.imageWidth.max && caps.imageHeight && caps.imageHeight.max) {
      settings = { imageWidth: caps.imageWidth.max, imageHeight: caps.imageHeight.max };
    }
  } catch {
    settings = undefined;
  }
  let blob;
  try {
    blob = await capture.takePhoto(settings);
  } catch (err) {
    if (!settings) throw err;
    blob = await capture.takePhoto(); // some cameras refuse explicit sizes: their default is their best
  }
  const bitmap = await createImageBitmap(blob);
  const size = [bitmap.width, bitmap.height];
  if (!TYPES.has(blob.type)) return bitmapToPhoto(bitmap, "takePhoto"); // e.g. a BMP: re-encode
  if (typeof bitmap.close === "function") bitmap.close();
  return { blob, width: size[0], height: size[1], method: "takePhoto" };
}

async function grabFrame(track) {
  return bitmapToPhoto(await new window.ImageCapture(track).grabFrame(), "grabFrame");
}

async function drawPreview(video) {
  if (!video || !video.videoWidth) throw new PhotoError("the camera shows no picture yet");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return { blob: await canvasBlob(canvas), width: canvas.width, height: canvas.height, method: "canvas" };
}

/**
 * The best still the browser can give of `track`: { blob, width, height, method }. `preview` is a
 * <video> playing the same track at capture size, for the last fallback.
 */
export async function capturePhoto(track, preview) {
  if (!track || track.readyState !== "live") throw new PhotoError("the camera is not running");
  const attempts = [];
  if (typeof window.ImageCapture === "function") attempts.push(() => takePhoto(track), () => grabFrame(track));
  attempts.push(() => drawPreview(preview));
  let last = null;
  for (const attempt of attempts) {
    try {
      const photo = await attempt();
      if (photo.blob.size > 0 && photo.width > 0 && photo.height > 0) return photo;
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof PhotoError ? last : new PhotoError(`the camera could not take a photo (${(last && last.name) || "error"})`);
}

/**
 * The "evidence" data channel the server opens on the buyer's peer connection. A new peer
 * connection (a reconnect) brings a new channel: `attach` it again.
 */
export class EvidenceLink {
  constructor() {
    this.channel = null;
    this._openWaiters = [];
    this._reply = null; // { request, resolve, reject } for the transfer in flight
    this._queue = Promise.resolve();
  }

  /** Adopt `channel` if it is the evidence channel; true when it was. */
  attach(channel) {
    if (!channel || channel.label !== "evidence") return false;
    if (this.channel && this.channel !== channel) this._fail("the connection was renewed");
    this.channel = channel;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = BUFFER_LOW;
    channel.addEventListener("open", () => this._opened(channel));
    channel.addEventListener("close", () => {
      if (this.channel === channel) this._fail("the connection dropped during the transfer");
    });
    channel.addEventListener("message", (event) => this._onMessage(channel, event));
    if (channel.readyState === "open") this._opened(channel);
    return true;
  }

  /** Send `photo` for `request`, after any transfer in flight; resolves with the stored artifact. */
  send(request, photo) {
    const run = this._queue.then(() => this._transfer(request, photo));
    this._queue = run.catch(() => {});
    return run;
  }

  _opened(channel) {
    if (channel !== this.channel) return;
    for (const resolve of this._openWaiters.splice(0)) resolve(channel);
  }

  _ready() {
    const channel = this.channel;
    if (channel && channel.readyState === "open") return Promise.resolve(channel);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._openWaiters = this._openWaiters.filter((w) => w !== done);
        reject(new PhotoError("the evidence channel is not open"));
      }, CHANNEL_WAIT_MS);
      const done = (ch) => {
        clearTimeout(timer);
        resolve(ch);
      };
      this._openWaiters.push(done);
    });
  }

  async _transfer(request, photo) {
    const channel = await this._ready();
    const bytes = new Uint8Array(await photo.blob.arrayBuffer());
    const reply = new Promise((resolve, reject) => {
      this._reply = { request, resolve, reject };
    });
    reply.catch(() => {}); // awaited below; a failure while still sending must not go unhandled
    try {
      channel.send(JSON.stringify({
        type: "photo", request, content_type: photo.blob.type, bytes: bytes.byteLength,
        width: photo.width, height: photo.height, method: photo.method,
      }));
      for (let offset = 0; offset < bytes.byteLength; offset += CHUNK_BYTES) {
        if (channel.bufferedAmount > BUFFER_HIGH) await this._drained(channel);
        if (!this._reply || this._reply.request !== request) break; // failed meanwhile
        channel.send(bytes.subarray(offset, Math.min(bytes.byteLength, offset + CHUNK_BYTES)));
      }
    } catch (err) {
      this._fail(`the photo could not be sent (${(err && err.name) || "error"})`);
    }
    const timer = setTimeout(() => {
      if (channel.readyState === "open") channel.send(JSON.stringify({ type: "cancel" }));
      this._fail("the server did not confirm the photo");
    }, REPLY_WAIT_MS);
    try {
      return await reply;
    } finally {
      clearTimeout(timer);
      this._reply = null;
    }
  }

  _drained(channel) {
    return new Promise((resolve) => {
      const done = () => {
        channel.removeEventListener("bufferedamountlow", done);
        channel.removeEventListener("close", done);
        resolve();
      };
      channel.addEventListener("bufferedamountlow", done);
      channel.addEventListener("close", done);
    });
  }

  _onMessage(channel, event) {
    if (channel !== this.channel || typeof event.data !== "string") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    const reply = this._reply;
    if (!reply || !message || (message.request !== undefined && message.request !== reply.request)) return;
    if (message.type === "stored") {
      this._reply = null;
      reply.resolve(message.artifact || null);
    } else if (message.type === "error") {
      this._reply = null;
      const what = typeof message.message === "string" ? message.message : "the server refused the photo";
      reply.reject(new PhotoError(`${what}${message.code ? ` (${message.code})` : ""}`));
    }
  }

  _fail(reason) {
    const reply = this._reply;
    this._reply = null;
    if (reply) reply.reject(new PhotoError(reason));
  }
}
