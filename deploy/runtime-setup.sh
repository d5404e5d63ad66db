#!/bin/sh
# The system layer shared by both images' runtime stages (Debian or Ubuntu):
# jemalloc plus the packages named as arguments, a fixed jemalloc path for
# LD_PRELOAD on any architecture, and the unprivileged `app` user that owns
# the data directories (named volumes mounted there inherit the owner).
set -eu

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libjemalloc2 "$@"
rm -rf /var/lib/apt/lists/*

# /usr/lib/<multiarch>/libjemalloc.so.2: x86_64-linux-gnu, aarch64-linux-gnu, ...
ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2

groupadd --system --gid 10001 app
useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app
install -d -o app -g app /data /data/voices /data/models
