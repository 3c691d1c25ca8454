"""Builds the binary fixtures (zips and compressed copies) from the text fixtures next to this script.

Run from tests/fixtures: python3 ../fixture-src/make_zips.py. Output is deterministic (fixed timestamps) so that the
committed files only change when their inputs do.
"""
import bz2
import gzip
import os
import zipfile

FIXED = (2025, 1, 1, 0, 0, 0)


def zip_files(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


os.makedirs("mixed", exist_ok=True)
# An iOS WhatsApp export: _chat.txt plus the photo it mentions, in a zip named after the chat.
zip_files(
    "mixed/WhatsApp Chat - Inês Costa.zip",
    [("_chat.txt", read("../fixture-src/ios_chat.txt")), ("00000004-PHOTO-2025-03-05-14-01-30.jpg", b"\xff\xd8\xff\xe0fixture")],
)
# The unpacked Slack export, zipped as Slack delivers it.
slack = []
for root, _, files in os.walk("slack_folder"):
    for f in sorted(files):
        full = os.path.join(root, f)
        slack.append((os.path.relpath(full, "slack_folder"), read(full)))
zip_files("mixed/slack-export.zip", sorted(slack))
# Compressed logs.
with open("mixed/sms.csv.gz", "wb") as f:
    f.write(gzip.compress(read("csv/sms.csv"), mtime=0))
with open("mixed/webchat.jsonl.bz2", "wb") as f:
    f.write(bz2.compress(read("jsonl/webchat.jsonl")))
# Media next to chats is skipped, never parsed.
with open("mixed/IMG-20250101-WA0001.jpg", "wb") as f:
    f.write(b"\xff\xd8\xff\xe0fixture")
# A corrupt zip for the error tests.
with open("bad/corrupt.zip", "wb") as f:
    f.write(b"PK\x03\x04 this is not really a zip")
