#!/usr/bin/env bash
# Rebuilds downloads/, the small real-audio corpus shipped with the mini_emo recipe,
# from Debian (bookworm) packages:
#
#   speech/  8 speakers x 20 read utterances (Asterisk prompts, festvox-ru, Tux Paint)
#   noise/   babble, music, rain, insects (seen: train/dev/test), vehicle, machinery,
#            keyboard (unseen: test only)
#   ATTRIBUTION.md, speech/speakers.tsv, noise/noise.tsv
#
# The recipe never calls this script: downloads/ is committed.  It needs network
# access to the Debian archive (apt-get download, about 650 MB of packages), root or
# an apt cache you can write to, dpkg-deb, ffmpeg (to decode G.722), and a Python
# with numpy, scipy and soundfile (tools/venv by default).  The package versions and
# their SHA-256 sums are pinned below; every file and cut point is listed in
# local/make_downloads_corpus.py, and all randomness is seeded, so the output is
# byte-identical from run to run.
#
# Usage (from egs/mini_emo/merit):
#   local/make_downloads.sh [--workdir DIR] [--out DIR] [--keep_unpacked true|false]
set -euo pipefail

workdir=${TMPDIR:-/tmp}/merit_mini_emo_downloads   # .deb cache and unpacked packages
out=downloads                                      # the corpus directory (replaced)
keep_unpacked=false                                # keep the unpacked packages afterwards

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --workdir) workdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --keep_unpacked) keep_unpacked=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
main_root=$(cd "${here}/../../../.." && pwd)
python=${PYTHON:-}
if [ -z "${python}" ]; then
    if [ -x "${main_root}/tools/venv/bin/python" ]; then
        python=${main_root}/tools/venv/bin/python
    else
        python=python3
    fi
fi

# package  version  sha256 of the .deb
packages="
asterisk-core-sounds-en-g722 1.6.1-1 38c5261820b406dcb0ecb37675720da2b0864850690690352ca52707eb623806
asterisk-core-sounds-fr-g722 1.6.1-1 7add61d5e42279ecff1bbdf842a5a946ac3644fac9a0fe44384731aa7270c8e0
asterisk-core-sounds-it-g722 1.6.1-1 46b4cf7afc508a5fcfc051b7ea233251c0d195dd4ef83cc4b7facb4c6429b016
asterisk-core-sounds-ru-g722 1.6.1-1 673b4238a6b8269960f055d868c6a11083f7a0d00979167cb01554046b48ed9b
festvox-ru 0.5+dfsg-6 21ef3f0f2978ecf2e2eddb367cb0ff4a72572196d28dc69feb84f4177af5e6c4
tuxpaint-stamps-default 2022.06.04-1 6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34
asterisk-moh-opsound-g722 2.03-1.1 8d6b39d6f2e8feff54a042c4a25e1b72f3e2478d05ee372c92f77446fa0b1671
megaglest-data 3.13.0-3 ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e
openttd-opensfx 1.0.3-2 2898b4677a3caccc4abc08fb4cf83319047b5a04729291deb5c77a8cd713c006
bucklespring-data 1.4.0-2 2add9f5583b3afc9c0b528066f4578baff930b74d4a94c8a25d103ef79a444e5
"

start=$(date +%s)
for tool in apt-get dpkg-deb ffmpeg sha256sum; do
    command -v "${tool}" > /dev/null || { log "Error: ${tool} not found (ffmpeg: apt-get install ffmpeg)"; exit 1; }
done
"${python}" -c "import numpy, scipy, soundfile" 2> /dev/null \
    || { log "Error: ${python} lacks numpy/scipy/soundfile (set PYTHON=...)"; exit 1; }

mkdir -p "${workdir}/debs" "${workdir}/pkgs"
while read -r pkg version sum; do
    [ -n "${pkg}" ] || continue
    deb=${workdir}/debs/${pkg}_${version//:/%3a}_all.deb
    if [ ! -f "${deb}" ]; then
        log "Downloading ${pkg}=${version}"
        (cd "${workdir}/debs" && apt-get download -q "${pkg}=${version}") \
            || { log "Error: apt-get download ${pkg}=${version} failed (run apt-get update; the version may have left the archive)"; exit 1; }
    fi
    if [ "$(sha256sum "${deb}" | cut -d' ' -f1)" != "${sum}" ]; then
        log "Error: ${deb} does not have the pinned SHA-256 ${sum}"
        exit 1
    fi
    log "Unpacking ${pkg} ${version}"
    rm -rf "${workdir}/pkgs/${pkg}"
    dpkg-deb -x "${deb}" "${workdir}/pkgs/${pkg}"
done <<< "${packages}"

log "Building ${out} with ${python}"
rm -rf "${out}.new"
"${python}" "${here}/make_downloads_corpus.py" --pkgroot "${workdir}/pkgs" --out "${out}.new"
rm -rf "${out}"
mv "${out}.new" "${out}"

if [ "${keep_unpacked}" != true ]; then
    rm -rf "${workdir}/pkgs"
fi
bytes=$(find "${out}" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
log "Done in $(( $(date +%s) - start )) s: $(find "${out}" -name '*.flac' | wc -l) FLAC files;" \
    "total size ${bytes} bytes ($(du -sh "${out}" | cut -f1) on disk)"
