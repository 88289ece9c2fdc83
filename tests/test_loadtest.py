"""The load-test harness: RTP frame accounting, freezes, the report schema, and real runs against `vitrine serve`.

Runs are small (at most 5 clients, a few seconds) and assert on counts and states, never on timings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest import cli, scenarios
from loadtest.agent import STAGES
from loadtest.config import RunConfig
from loadtest.quality import (
    FRAME_TIMEOUT_S,
    PLI_AFTER_S,
    LossRecovery,
    VideoQuality,
    detect_freezes,
    glass_to_glass_ms,
)
from loadtest.report import loss_tolerance
from loadtest.schema import load_schema, validate
from tests.loadtest_helpers import RUN_TIMEOUT_S, assert_monotonic, harness

FRAME_TICKS = 3000  # 30 fps at 90 kHz


# -- synthetic VP8 RTP ---------------------------------------------------------------------


def vp8_payload(first: bool, keyframe: bool) -> bytes:
    """A VP8 RTP payload: descriptor (S bit on a frame's first packet, partition 0), then a payload header."""
    if first:
        return bytes([0x10, 0x00 if keyframe else 0x01, 0x9D, 0x01, 0x2A])
    return bytes([0x00, 0x55, 0x55])


def packets(
    frames: int,
    per_frame: int = 2,
    keyframes: tuple[int, ...] = (0,),
    seq0: int = 65530,
    ts0: int = 4294960000,
    t0: float = 100.0,
) -> list[tuple[int, int, bool, bytes, float, int]]:
    """(seq, timestamp, marker, payload, arrival, frame index) for ``frames`` frames at 30 fps.

    Sequence numbers and timestamps start just below their wrap, so unwrapping is exercised too.
    """
    out = []
    seq = seq0
    for f in range(frames):
        for p in range(per_frame):
            out.append(
                (
                    seq & 0xFFFF,
                    (ts0 + f * FRAME_TICKS) & 0xFFFFFFFF,
                    p == per_frame - 1,
                    vp8_payload(p == 0, f in keyframes),
                    t0 + f / 30 + p * 0.001,
                    f,
                )
            )
            seq += 1
    return out


def feed(quality: VideoQuality, pkts: list[tuple[int, int, bool, bytes, float, int]]) -> None:
    for seq, ts, marker, payload, arrival, _ in pkts:
        quality.on_packet(seq, ts, marker, payload, arrival)
        quality.advance(arrival)


def test_a_clean_stream_is_fully_delivered() -> None:
    quality = VideoQuality(nominal_fps=30)
    pkts = packets(30)
    feed(quality, pkts)
    result = quality.finish(pkts[0][4], pkts[-1][4] + 0.01)
    assert result["frames_delivered"] == 30
    assert result["frames_expected"] == 30
    assert result["frames_lost"] == 0
    assert result["delivered_ratio"] == 1.0
    assert result["freezes"]["count"] == 0
    assert result["jitter_ms"] < 1.0
    assert len(quality.g2g) == 30


def test_a_lost_packet_breaks_the_chain_until_a_keyframe() -> None:
    quality = VideoQuality(nominal_fps=30)
    pkts = packets(12, keyframes=(0, 8))
    lost = next(p for p in pkts if p[5] == 3 and not p[2])  # the first packet of frame 3
    feed(quality, [p for p in pkts if p is not lost])
    end = pkts[-1][4] + FRAME_TIMEOUT_S + 0.1
    result = quality.finish(pkts[0][4], end)
    assert result["frames_incomplete"] == 1  # frame 3
    assert result["frames_undecodable"] == 4  # frames 4-7 depend on frame 3
    assert result["frames_delivered"] == 3 + 4  # frames 0-2, then the keyframe 8 and 9-11
    assert result["frames_lost"] == 1
    assert result["frames_expected"] == 12
    assert result["keyframes"] == 2


def test_a_retransmitted_packet_completes_its_frame() -> None:
    quality = VideoQuality(nominal_fps=30)
    pkts = packets(10)
    lost = next(p for p in pkts if p[5] == 4 and p[2])  # the marker packet of frame 4
    late = (lost[0], lost[1], lost[2], lost[3], pkts[-1][4] + 0.05, lost[5])  # arrives after frame 9
    feed(quality, [p for p in pkts if p is not lost] + [late])
    result = quality.finish(pkts[0][4], late[4] + 0.01)
    assert result["frames_delivered"] == 10
    assert result["frames_lost"] == 0
    assert result["packets_recovered"] == 1
    assert result["freezes"]["count"] == 1  # frames 5-9 waited for frame 4 (about 200 ms)


def test_a_whole_lost_frame_is_missing_and_waits_for_its_retransmission_first() -> None:
    quality = VideoQuality(nominal_fps=30)
    pkts = packets(10, per_frame=1, keyframes=(0,))
    lost = [p for p in pkts if p[5] == 5]
    feed(quality, [p for p in pkts if p not in lost])
    assert quality.frames_decodable == 5  # frames 6-9 are held back: frame 5 may still come
    result = quality.finish(pkts[0][4], pkts[-1][4] + FRAME_TIMEOUT_S + 0.1)
    assert result["frames_missing"] == 1
    assert result["frames_undecodable"] == 4
    assert result["frames_delivered"] == 5
    assert result["frames_expected"] == 10


def test_accounting_starts_on_a_frame_boundary() -> None:
    quality = VideoQuality(nominal_fps=30)
    pkts = packets(6, per_frame=3)
    feed(quality, pkts[1:])  # joined mid-frame: frame 0 lacks its first packet
    result = quality.finish(pkts[0][4], pkts[-1][4] + 0.01)
    assert result["frames_delivered"] == 5
    assert result["frames_lost"] == 0


def test_freeze_definition() -> None:
    times = [i / 30 for i in range(30)]
    # mean interval 33 ms: threshold max(100 ms, 183 ms) = 183 ms
    assert detect_freezes(times + [times[-1] + 0.15]).count == 0
    frozen = detect_freezes(times + [times[-1] + 0.4, times[-1] + 0.4 + 1 / 30])
    assert frozen.count == 1
    assert frozen.total_s == pytest.approx(0.4)
    # at 10 fps the 3x rule dominates: 0.25 s < max(0.3, 0.25) is no freeze, 0.35 s is one
    slow = [i / 10 for i in range(20)]
    assert detect_freezes(slow + [slow[-1] + 0.25]).count == 0
    assert detect_freezes(slow + [slow[-1] + 0.35]).count == 1
    # video that stops is a freeze in progress at the end of the window
    trailing = detect_freezes(times, end=times[-1] + 2.0)
    assert trailing.count == 1 and trailing.total_s == pytest.approx(2.0)


def test_loss_recovery_nacks_gaps_and_asks_for_a_keyframe_on_a_stall() -> None:
    now = [100.0]
    nacks: list[list[int]] = []
    plis: list[int] = []

    def send_nack(ssrc: int, seqs: list[int]) -> None:
        nacks.append(seqs)

    def send_pli(ssrc: int) -> None:
        plis.append(ssrc)

    recovery = LossRecovery(VideoQuality(nominal_fps=30), send_nack, send_pli, clock=lambda: now[0])
    pkts = packets(6, per_frame=1)
    for seq, ts, marker, payload, _, frame in pkts:
        if frame == 3:
            continue  # lost
        now[0] += 1 / 30
        recovery.on_rtp(seq, ts, marker, payload, ssrc=1234)
    assert nacks and nacks[0] == [pkts[3][0]]
    assert recovery.nacks_sent >= 1
    assert not plis
    now[0] += PLI_AFTER_S + 0.05  # nothing decodable since frame 2
    recovery.check_stall()
    assert plis == [1234]
    recovery.check_stall()  # at most one PLI per PLI_AFTER_S
    assert plis == [1234]


def test_glass_to_glass_matches_rtp_timestamps_within_a_tick() -> None:
    captures = {1000: 10.0, 4000: 10.033}
    assert glass_to_glass_ms([(1000, 10.05), (4001, 10.043), (7000, 10.1)], captures) == [50.0, 10.0]


def test_loss_tolerance_widens_with_bursts_and_narrows_with_packets() -> None:
    assert loss_tolerance(0.1, 1, 100_000) == pytest.approx(0.005)  # the floor
    assert loss_tolerance(0.1, 1, 1000) < loss_tolerance(0.1, 4, 1000)
    assert loss_tolerance(0.1, 1, 1000) > loss_tolerance(0.1, 1, 4000)


def test_scenarios_list_roles_rooms_and_workers() -> None:
    consult, clients = scenarios.build(RunConfig(scenario="consult", embedded=True, pairs=3), "t")
    assert len(consult) == 3 and [c.role for c in clients[:2]] == ["customer", "agent"]
    assert all(c.publish and c.watch and c.phase == 1 for c in clients)
    rooms, clients = scenarios.build(RunConfig(scenario="inspection", embedded=True, pairs=2), "t")
    assert [(c.role, c.publish, c.watch) for c in clients[:2]] == [("buyer", True, False), ("inspector", False, True)]
    rooms, clients = scenarios.build(
        RunConfig(scenario="live", embedded=True, viewers=5, shape="ramp", join_rate=2.0), "t"
    )
    assert len(rooms) == 1 and rooms[0].max_participants >= 6
    host, *viewers = clients
    assert host.phase == 0 and not host.watch and all(v.phase == 1 and v.watch for v in viewers)
    assert [v.offset_s for v in viewers] == [0.0, 0.5, 1.0, 1.5, 2.0]
    shares = scenarios.assign(clients, 2)
    assert shares[0] == [host]  # the live source has a process of its own
    assert sorted(len(s) for s in shares[1:]) == [2, 3]


def test_the_schema_validator_rejects_a_broken_report() -> None:
    schema = load_schema()
    errors = validate({"schema_version": "1.0.0", "kind": "run", "summary": {"join_ms": {}}}, schema)
    assert any("missing required key 'slo'" in e for e in errors)
    assert any("summary: missing required key 'stages_ms'" in e for e in errors)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--scenario", "consult", "--pairs", "2"],  # no target
        ["run", "--embedded", "--url", "http://127.0.0.1:1", "--api-key", "k", "--api-secret", "s"],  # two targets
        ["run", "--embedded", "--scenario", "live"],  # no viewers
        ["run", "--embedded", "--scenario", "live", "--viewers", "3", "--pairs", "2"],
        ["run", "--embedded", "--loss", "100"],
        ["run", "--embedded", "--loss", "ten"],
        ["run", "--embedded", "--duration", "0"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "python -m loadtest run" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for form in (
        "--scenario consult --pairs 50 --json report.json",
        "--scenario live --viewers 150 --duration 20",
        "--pairs 10 --loss 10",
        "--loss 0,2,5,10",
        "freeze",
    ):
        assert form in text


# -- real runs ---------------------------------------------------------------------------------


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_consult_run_reports_every_client_and_validates(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path, "--scenario", "consult", "--pairs", "2", "--duration", "5", "--slo-join-p95", "100000"
    )
    assert code == cli.EXIT_OK, output[-4000:]
    assert validate(report, load_schema()) == []
    summary = report["summary"]
    assert summary["clients"] == 4
    assert summary["failures"]["count"] == 0, summary["failures"]
    assert summary["join_ms"]["n"] == 4
    for stage in STAGES["ws"]:
        assert summary["stages_ms"][stage]["n"] == 4
    media = summary["media"]
    assert media["subscribers"] == 4
    assert media["frames_delivered"] > 0
    assert media["glass_to_glass_ms"]["n"] > 0
    assert media["audio"]["subscribers"] == 4
    assert report["slo"]["passed"] is True
    for client in report["clients"]:
        assert client["ok"] and client["publishes"] and client["watches"]
        assert_monotonic(client)
    assert (tmp_path / "report.md").read_text().startswith("# Vitrine load test: consult")
    assert (tmp_path / "report-join-cdf.png").stat().st_size > 0
    assert report["server"]["alive"] is True


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_measured_loss_matches_the_configured_loss(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path,
        "--scenario",
        "consult",
        "--pairs",
        "1",
        "--duration",
        "5",
        "--loss",
        "20",
        "--seed",
        "3",
        "--slo-join-p95",
        "100000",
        "--slo-max-failures",
        "100",
    )
    assert code == cli.EXIT_OK, output[-4000:]
    assert validate(report, load_schema()) == []
    impairment = report["summary"]["impairment"]
    assert impairment["active"] is True
    for direction in ("down", "up"):
        measured = impairment["measured"][direction]
        assert measured["packets"] > 200
        assert measured["configured_loss"] == 0.2
        assert abs(measured["loss"] - 0.2) <= loss_tolerance(0.2, 1, measured["packets"])
        assert measured["within_tolerance"] is True
    assert impairment["loss_verified"] is True
    assert all(c["impairment"] is not None for c in report["clients"])


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_failing_slo_exits_non_zero(tmp_path: Path) -> None:
    code, report, _ = harness(
        tmp_path, "--scenario", "consult", "--pairs", "1", "--duration", "2", "--slo-join-p95", "1"
    )
    assert code == cli.EXIT_SLO_FAILED
    assert report["slo"]["passed"] is False
    check = next(c for c in report["slo"]["checks"] if c["name"] == "join_p95_ms")
    assert check["threshold"] == 1 and check["passed"] is False


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_live_run_times_the_host_to_connected_and_viewers_to_their_first_frame(tmp_path: Path) -> None:
    code, report, output = harness(
        tmp_path,
        "--scenario",
        "live",
        "--viewers",
        "2",
        "--duration",
        "3",
        "--shape",
        "ramp",
        "--join-rate",
        "4",
        "--no-audio",
        "--slo-join-p95",
        "100000",
    )
    assert code == cli.EXIT_OK, output[-4000:]
    assert validate(report, load_schema()) == []
    host, *viewers = report["clients"]
    assert host["role"] == "host" and host["publishes"] and not host["watches"]
    assert host["ok"] and host["join_ms"] == host["stages_ms"]["connected"]
    assert host["stages_ms"]["first_frame"] is None and host["media"] is None
    assert len(viewers) == 2
    for viewer in viewers:
        assert viewer["ok"] and not viewer["publishes"]
        assert viewer["join_ms"] == viewer["stages_ms"]["first_frame"]
        assert viewer["media"]["frames_delivered"] > 0
        assert viewer["media"]["audio"] is None
        assert_monotonic(viewer)
    assert_monotonic(host)
