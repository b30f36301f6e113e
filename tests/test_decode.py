import av
import h5py
import numpy as np
import pandas as pd
import pytest
import simplejpeg

from conftest import write_video
from signpipe.decode import DecodeError, decode_shard, decode_video, target_size
from signpipe.shards import read_index, read_video


def _manifest(tmp_path, rows):
    base = {"label": 0, "gloss": "x", "split": "train", "signer": "", "frame_start": 0,
            "frame_end": -1, "shard": 0}
    path = tmp_path / "manifest.csv"
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(path, index=False)
    return path


def _bar_column(jpeg: bytes) -> int:
    """Column of the bright bar drawn by write_video, in the decoded image."""
    image = simplejpeg.decode_jpeg(bytes(jpeg))
    return int(np.argmax(image[..., 0].mean(axis=0)))


def test_target_size_only_shrinks_and_keeps_even_sides():
    assert target_size(640, 360, 256) == (456, 256)
    assert target_size(320, 240, 256) == (320, 240)  # never enlarged
    assert target_size(1280, 720, 256) == (456, 256)
    w, h = target_size(333, 999, 100)
    assert w == 100 and h % 2 == 0 and abs(h - 300) <= 1


def test_clip_window_and_order(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=20, width=128, height=64)
    full = decode_video(video, short_side=256)
    clip = decode_video(video, frame_start=5, frame_end=9, short_side=256)
    assert len(full.jpeg) == 20 and len(clip.jpeg) == 4
    # frame i has its bar at column 4*i: the clip holds frames 5..8
    assert [_bar_column(j) for j in clip.jpeg] == [_bar_column(j) for j in full.jpeg[5:9]]
    assert _bar_column(clip.jpeg[0]) > _bar_column(full.jpeg[0])
    assert (clip.height, clip.width, clip.src_height, clip.src_width) == (64, 128, 64, 128)
    assert clip.fps == pytest.approx(25)


def test_resize_to_short_side(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=3, width=160, height=96)
    out = decode_video(video, short_side=48)
    image = simplejpeg.decode_jpeg(out.jpeg[0])
    assert image.shape == (48, 80, 3) == (out.height, out.width, 3)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
        (lambda p: (p.write_bytes(b"not a video at all" * 50), p)[1], "cannot open"),
    ],
)
def test_bad_videos_raise_with_reason(tmp_path, make, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_video(make(tmp_path / "bad.mp4"))


@pytest.mark.parametrize("faststart, reason", [(True, "truncated"), (False, "cannot open")])
def test_truncated_video_is_detected(tmp_path, faststart, reason):
    """A download cut in half: with the header first it opens but falls short; without, it cannot open."""
    video = write_video(tmp_path / "v.mp4", frames=60, width=128, height=96, faststart=faststart)
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match=reason):
        decode_video(cut)


def test_clip_beyond_video_end(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=6)
    with pytest.raises(DecodeError, match="clip starts at frame 10 but the video has 6 frames"):
        decode_video(video, frame_start=10)


def test_shard_keeps_good_videos_and_lists_failures(tmp_path):
    good = write_video(tmp_path / "good.mp4", frames=8)
    other = write_video(tmp_path / "other.mp4", frames=5)
    (tmp_path / "empty.mp4").write_bytes(b"")
    manifest = _manifest(tmp_path, [
        {"video_id": "007", "path": str(good), "label": 3, "split": "test"},
        {"video_id": "b", "path": str(tmp_path / "empty.mp4")},
        {"video_id": "c", "path": str(tmp_path / "missing.mp4")},
        {"video_id": "d", "path": str(other), "frame_start": 1, "frame_end": 4},
        {"video_id": "e", "path": str(other), "shard": 1},  # another shard: not here
    ])
    frames, failures = tmp_path / "out" / "0.h5", tmp_path / "out" / "0.failures.csv"
    stats = decode_shard(manifest, 0, frames, failures, short_side=256, threads=2, progress=False)
    assert stats == {"videos": 2, "failed": 2, "frames": 11}
    failed = pd.read_csv(failures)
    assert dict(zip(failed["video_id"], failed["reason"])) == {
        "b": "empty file (0 bytes)", "c": "file not found"}
    with h5py.File(frames) as f:
        index = read_index(f)
        assert index["video_id"].tolist() == ["007", "d"]
        assert index["length"].tolist() == [8, 3]
        assert index.loc[0, "label"] == 3 and index.loc[0, "split"] == "test"
        assert index.loc[0, "src_width"] == 96 and index.loc[0, "fps"] == pytest.approx(25)
        assert f.attrs["schema"] == "signpipe/frames/1"
        jpeg = read_video(f, "jpeg", index.iloc[1])
        assert simplejpeg.decode_jpeg(bytes(jpeg[0])).shape == (64, 96, 3)
        assert (f["height"][:] == 64).all()


def test_real_clips_decode(shared_data, tmp_path):
    clips = shared_data / "clips"
    manifest = _manifest(tmp_path, [
        {"video_id": "FOOTBALL", "path": str(clips / "FOOTBALL.mp4")},
        {"video_id": "SOUP", "path": str(clips / "SOUP.mp4")},
    ])
    stats = decode_shard(manifest, 0, tmp_path / "f.h5", tmp_path / "f.csv", short_side=256, progress=False)
    assert stats == {"videos": 2, "failed": 0, "frames": 62 + 41}  # frame counts from data/README.md
    with h5py.File(tmp_path / "f.h5") as f:
        index = read_index(f).set_index("video_id")
        assert (index.loc["FOOTBALL", "src_width"], index.loc["FOOTBALL", "src_height"]) == (640, 360)
        first = simplejpeg.decode_jpeg(bytes(f["jpeg"][0]))
        assert first.shape == (256, 456, 3) and first.std() > 10  # a real picture, not blank


def test_real_clip_cut_short_is_truncated(shared_data, tmp_path):
    """A real web video cut mid-stream decodes cleanly up to the cut: only the header's count betrays it."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((shared_data / "clips" / "FOOTBALL.mp4").read_bytes()[:30000])
    with pytest.raises(DecodeError, match=r"truncated: decoded \d+ of the 64 frames"):
        decode_video(cut)


def _with_non_utf8_handler_name(path):
    """A copy of an MP4 whose stream handler_name is a QuickTime Pascal string (a length byte, then
    Mac Roman text), as phone and QuickTime files carry: not UTF-8."""
    name = b"SignpipeHandlerName"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["handler_name"] = name.decode()
        for i in range(6):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    assert data.count(name) == 1
    path.write_bytes(data.replace(name, bytes([len(name) - 1]) + "©Apple".encode("mac_roman").ljust(len(name) - 1, b" ")))
    return path


def test_metadata_that_is_not_utf8_does_not_fail_the_shard(tmp_path):
    apple = _with_non_utf8_handler_name(tmp_path / "apple.mp4")
    with pytest.raises(UnicodeDecodeError):
        av.open(str(apple))  # what PyAV does by default with such a file
    good = write_video(tmp_path / "good.mp4", frames=5)
    manifest = _manifest(tmp_path, [{"video_id": "apple", "path": str(apple)},
                                    {"video_id": "good", "path": str(good)}])
    stats = decode_shard(manifest, 0, tmp_path / "0.h5", tmp_path / "0.failures.csv", progress=False)
    assert stats == {"videos": 2, "failed": 0, "frames": 6 + 5}


def test_an_unexpected_error_fails_one_video_but_memory_errors_stop_the_job(tmp_path, monkeypatch):
    """Any exception of one video (here raised by PyAV) is a failures row; MemoryError is not per video."""
    good, bad = write_video(tmp_path / "good.mp4", frames=5), write_video(tmp_path / "bad.mp4", frames=5)
    real_open = av.open

    def library_bug(path, *args, **kwargs):
        if path == str(bad):
            raise error
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(av, "open", library_bug)
    manifest = _manifest(tmp_path, [{"video_id": "bad", "path": str(bad)}, {"video_id": "good", "path": str(good)}])
    error = KeyError("tag")
    stats = decode_shard(manifest, 0, tmp_path / "0.h5", tmp_path / "0.failures.csv", progress=False)
    assert stats == {"videos": 1, "failed": 1, "frames": 5}
    failed = pd.read_csv(tmp_path / "0.failures.csv")
    assert failed.to_dict("records") == [{"video_id": "bad", "path": str(bad), "stage": "decode",
                                          "reason": "KeyError: 'tag'"}]
    error = MemoryError()
    with pytest.raises(MemoryError):
        decode_shard(manifest, 0, tmp_path / "1.h5", tmp_path / "1.failures.csv", progress=False)
    assert not (tmp_path / "1.h5").exists()


def _write_pictures(path, pictures, rotation=0, codec="libx264"):
    """A video of ``pictures`` (RGB uint8 arrays) with a display matrix turning them ``rotation``
    degrees counter-clockwise, as phones store portrait recordings."""
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _upright_pictures(frames=3, height=48, width=80):
    """A signer stand-in: a bright 'head' block near the top, left of centre, on a vertical gradient."""
    rows = np.linspace(20, 120, height, dtype=np.uint8)[:, None, None]
    pictures = []
    for i in range(frames):
        image = np.broadcast_to(rows, (height, width, 3)).copy()
        image[4:16, 10 + 2 * i:26 + 2 * i] = 240
        pictures.append(image)
    return pictures


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_phone_rotation_is_applied_and_the_displayed_size_recorded(tmp_path, rotation):
    """A clip stored sideways with a display matrix decodes like an upright copy of the same clip."""
    upright = _upright_pictures()
    stored = [np.rot90(p, -rotation // 90) for p in upright]  # what the phone writes
    assert stored[0].shape[:2] == ((80, 48) if rotation % 180 else (48, 80))
    reference = decode_video(_write_pictures(tmp_path / "upright.mp4", upright), short_side=256)
    phone = decode_video(_write_pictures(tmp_path / "phone.mp4", stored, rotation), short_side=256)
    assert (phone.src_width, phone.src_height, phone.width, phone.height) == (80, 48, 80, 48)
    for ours, theirs in zip(phone.jpeg, reference.jpeg):
        a = simplejpeg.decode_jpeg(ours).astype(float)
        b = simplejpeg.decode_jpeg(theirs).astype(float)
        assert a.shape == b.shape == (48, 80, 3)
        assert np.abs(a - b).mean() < 4  # JPEG/H.264 noise only; sideways differs by tens
        assert np.abs(a - b[::-1, ::-1]).mean() > 20
    small = decode_video(tmp_path / "phone.mp4", short_side=24)
    assert (small.width, small.height) == (40, 24)  # the displayed short side is the one resized


def _remux(source, target):
    """``source``'s video packets copied unchanged into another container (``target``'s suffix)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return target


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_truncated_matroska_and_webm_are_failures(shared_data, tmp_path, suffix):
    """Matroska/WebM carry no frame count: an interrupted download is caught by its duration."""
    if suffix == ".mkv":  # the real 41-frame clip, its H.264 packets as they are
        whole = _remux(shared_data / "clips" / "SOUP.mp4", tmp_path / "soup.mkv")
    else:
        noise = np.random.default_rng(0).integers(0, 255, (41, 48, 64, 3), dtype=np.uint8)
        whole = _write_pictures(tmp_path / "soup.webm", list(noise), codec="libvpx")
    with av.open(str(whole)) as container:
        assert container.streams.video[0].frames == 0  # the gap the header check fell through
    assert len(decode_video(whole).jpeg) == 41
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DecodeError, match=r"truncated: decoded \d+ of the 41 frames its container's duration implies"):
        decode_video(cut)
    manifest = _manifest(tmp_path, [{"video_id": "cut", "path": str(cut)}, {"video_id": "whole", "path": str(whole)}])
    stats = decode_shard(manifest, 0, tmp_path / "0.h5", tmp_path / "0.failures.csv", progress=False)
    assert stats == {"videos": 1, "failed": 1, "frames": 41}
    assert pd.read_csv(tmp_path / "0.failures.csv")["video_id"].tolist() == ["cut"]


def test_a_window_counts_the_files_own_frames_whatever_the_fps_column(tmp_path):
    """Issue #25 item 5: WLASL's index says fps 25, but its preprocess.py cuts frames of the raw file as
    OpenCV decodes them; so a 30 fps file with the window 10..40 gives its own frames 10..39, not a
    window rescaled to 12..48, and the frames shard records the file's rate."""
    video = write_video(tmp_path / "v.mp4", frames=60, width=256, height=64, fps=30)
    manifest = _manifest(tmp_path, [{"video_id": "w", "path": str(video), "frame_start": 10, "frame_end": 40,
                                     "fps": 25}])
    decode_shard(manifest, 0, tmp_path / "0.h5", tmp_path / "0.csv", progress=False)
    full = decode_video(video, short_side=256)
    with h5py.File(tmp_path / "0.h5") as f:
        entry = read_index(f).iloc[0]
        assert entry["length"] == 30 and entry["fps"] == pytest.approx(30)
        clip = read_video(f, "jpeg", entry)
        assert [_bar_column(j) for j in clip] == [_bar_column(j) for j in full.jpeg[10:40]]
