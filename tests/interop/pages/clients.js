// Test-time entry point: outside WHIP/WHEP browser clients from npm, as a page of another origin uses them.
// tests/interop/browser_clients_support.py bundles it with esbuild; the product has no build step.
// Every peer connection is kept by name so the test can read its state and getStats().
import { WHIPClient as MedoozeWHIP } from "whip-whep/whip.js";
import { WHEPClient as MedoozeWHEP } from "whip-whep/whep.js";
import { WHIPClient as EyevinnWHIP } from "@eyevinn/whip-web-client";
import { WebRTCPlayer } from "@eyevinn/webrtc-player";

const sessions = {}; // name -> { pc, video, stop }
const NO_ICE_SERVERS = []; // loopback only: never a public STUN server

async function camera() {
  return navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
}

function videoElement(name) {
  const video = document.createElement("video");
  video.id = name;
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  return video;
}

const publishers = {
  async medooze(name, url, token) {
    const stream = await camera();
    const pc = new RTCPeerConnection({ iceServers: NO_ICE_SERVERS });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    const client = new MedoozeWHIP();
    await client.publish(pc, url, token);
    sessions[name] = { pc, stop: () => client.stop() };
  },
  async eyevinn(name, url, token) {
    const stream = await camera();
    const client = new EyevinnWHIP({ endpoint: url, opts: { authkey: token, iceServers: NO_ICE_SERVERS } });
    await client.ingest(stream);
    await client.getResourceUrl();
    sessions[name] = { pc: client.peer, stop: () => client.destroy() };
  },
};

const players = {
  async medooze(name, url, token) {
    const video = videoElement(name);
    const pc = new RTCPeerConnection({ iceServers: NO_ICE_SERVERS });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      video.srcObject = stream;
    };
    const client = new MedoozeWHEP();
    await client.view(pc, url, token || undefined);
    sessions[name] = { pc, video, stop: () => client.stop() };
  },
  async eyevinn(name, url, token) {
    const video = videoElement(name);
    const player = new WebRTCPlayer({ video, type: "whep", iceServers: NO_ICE_SERVERS });
    await player.load(new URL(url), token ? `Bearer ${token}` : undefined);
    // The player makes a new peer connection when it reconnects: read the current one.
    sessions[name] = { get pc() { return player.peer; }, video, stop: () => player.unload() };
  },
};

async function framesDecoded(name) {
  const pc = sessions[name]?.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "video") frames += report.framesDecoded || 0;
  });
  return frames;
}

window.interop = {
  camera,
  publish: (client, name, url, token) => publishers[client](name, url, token),
  play: (client, name, url, token) => players[client](name, url, token),
  stop: async (name) => sessions[name].stop(),
  connectionState: (name) => sessions[name]?.pc?.connectionState ?? "none",
  // The DTLS transport the media came over: "closed" as soon as the server closes its side.
  dtlsState: (name) => sessions[name]?.pc?.getReceivers()[0]?.transport?.state ?? "none",
  videoWidth: (name) => sessions[name]?.video?.videoWidth ?? 0,
  framesDecoded,
};
