#!/usr/bin/env bash
# Build build/plots_template.html: the HTML template `dvc plots show` fills, with vega, vega-lite
# and vega-embed inlined so the page works offline, and name it in .dvc/config.local
# (`plots.html_template`, which overrides the committed .dvc/config: that one names
# .dvc/plots_fallback.html, a page that loads vega from DVC's CDN and says so, so that a clone
# without this build still gets a page instead of DVC's "HTML template has to contain" error).
# The three packages come from the npm registry at the pinned versions below (`npm pack`); each
# tarball's sha512 must equal its pinned integrity string, else the script fails naming it.
# Idempotent: when the template was built from the same pins it only checks and exits.
# Needs bash, python3 and npm (npm only when the template has to be built).
# To bump a version: `npm view vega@5.x.y dist.integrity`, update the pin, rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

# name@version  file-in-tarball  npm integrity (sha512 of the .tgz)
# vega-lite 5.x: DVC's vega-lite specs use "$schema": ".../vega-lite/v5.json" (vega-lite 6 needs
# vega 6); vega 5.x and vega-embed 6.x are the lines that go with it (DVC's own page uses
# vega 5.20.2, vega-lite 5.2.0 and vega-embed 6.18.2 from a CDN).
PINS=(
  "vega@5.33.1 build/vega.min.js sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw=="
  "vega-lite@5.23.0 build/vega-lite.min.js sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA=="
  "vega-embed@6.29.0 build/vega-embed.min.js sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q=="
)
TEMPLATE_REV=3  # bump when the page around the scripts (scripts/plots_page.py) changes
OUT=build/plots_template.html

KEY=$( (printf '%s\n' "${PINS[@]}" "$TEMPLATE_REV"; cat scripts/plots_page.py) |
  python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')
NAMES=$(printf '%s\n' "${PINS[@]}" | cut -d' ' -f1 | paste -sd' ' -)
use_template() {  # relative paths in .dvc/config.local are taken from .dvc/
  local dvc=(dvc)
  [ -x .venv/bin/python ] && dvc=(.venv/bin/python -m dvc)
  "${dvc[@]}" config --local plots.html_template "../$OUT" ||
    { echo "[setup] ERROR: could not name $OUT in .dvc/config.local" >&2; exit 1; }
}

if [ -f "$OUT" ] && [[ "$(head -c 1024 "$OUT")" == *"build-key $KEY"* ]]; then
  use_template
  echo "[setup] plots template up to date: $OUT ($NAMES), named in .dvc/config.local"
  exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for pin in "${PINS[@]}"; do
  spec=${pin%% *}
  # --prefer-offline: reuse npm's cache when it has the tarball; the integrity check below
  # holds either way. Run in $TMP so no package.json or .npmrc of the project is picked up.
  (cd "$TMP" && NPM_CONFIG_UPDATE_NOTIFIER=false npm pack --silent --ignore-scripts \
    --prefer-offline "$spec" >"$TMP/${spec%@*}.name") ||
    { echo "[setup] ERROR: npm pack $spec failed" >&2; exit 1; }
done

mkdir -p "$(dirname "$OUT")"
python3 - "$TMP" "$OUT" "$KEY" "${PINS[@]}" <<'EOF'
import base64, hashlib, io, json, os, re, sys, tarfile

tmp, out, key, *pins = sys.argv[1:]
scripts = []
for pin in pins:
    spec, member, integrity = pin.split()
    name, version = spec.rsplit("@", 1)
    with open(os.path.join(tmp, name + ".name")) as f:
        tgz = os.path.join(tmp, f.read().strip().splitlines()[-1])
    blob = open(tgz, "rb").read()
    got = "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()
    if got != integrity:
        sys.exit(f"[setup] ERROR: integrity mismatch for {spec}:\n"
                 f"  pinned {integrity}\n  got    {got}\n"
                 "refusing to build the plots template")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        meta = json.load(tar.extractfile("package/package.json"))
        js = tar.extractfile("package/" + member).read().decode("utf-8")
    if (meta["name"], meta["version"]) != (name, version):
        sys.exit(f"[setup] ERROR: {spec}: tarball holds {meta['name']}@{meta['version']}")
    # No source map to fetch; and nothing that would end the <script> element early.
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.M).rstrip()
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.I)
    if "<!--" in js:
        sys.exit(f"[setup] ERROR: {spec}: '<!--' in {member} cannot be inlined safely")
    # dvc_render fills the page with str.replace on these three placeholders.
    for ph in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
        if ph in js:
            sys.exit(f"[setup] ERROR: {spec}: {member} contains DVC's placeholder {ph}")
    scripts.append(f"<script>/* {spec} {member} ({meta.get('license', '?')}) */\n{js}\n</script>")

sys.path.insert(0, "scripts")
from plots_page import offline_page  # the page around the scripts, shared with .dvc/plots_fallback.html

page = offline_page(key, " ".join(p.split()[0] for p in pins), "\n".join(scripts))
with open(out + ".tmp", "w", encoding="utf-8") as f:
    f.write(page)
os.replace(out + ".tmp", out)
EOF
use_template
echo "[setup] plots template written: $OUT ($NAMES, $(wc -c <"$OUT") bytes), named in .dvc/config.local"
