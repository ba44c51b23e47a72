#!/usr/bin/env bash
# Liquid rendering benchmark: the same three templates and data through Beckon
# (`beckon bench liquid`), python-liquid and Ruby's liquid gem (YJIT when available), in one run.
#
#   bench/liquid/run.sh [ITERATIONS_SCALE]
set -euo pipefail
cd "$(dirname "$0")/../.."
SCALE=${1:-1}
python3 -c "import liquid" 2>/dev/null || pip install -q python-liquid
command -v ruby >/dev/null && ruby -e "require \"liquid\"" 2>/dev/null || { apt-get update -q && apt-get install -y -q ruby ruby-liquid; }
swift build -c release --product beckon >/dev/null
RUBY=(ruby)
ruby --yjit -e '' 2>/dev/null && RUBY=(ruby --yjit)
printf '| template | engine | renders/s | parse µs |\n| --- | --- | ---: | ---: |\n'
for case in "push 200000" "email 5000" "social 200000"; do
    set -- $case
    name=$1
    iterations=$(( $2 * SCALE ))
    small=$(( iterations / 4 ))
    beckon=$(.build/release/beckon bench liquid --template bench/liquid/$name.liquid --data bench/liquid/$name.json --iterations "$iterations")
    python=$(cd bench/liquid && python3 bench_python.py $name.liquid $name.json "$small")
    ruby=$("${RUBY[@]}" bench/liquid/bench_ruby.rb bench/liquid/$name.liquid bench/liquid/$name.json "$small")
    for engine in "beckon:$beckon" "python-liquid:$python" "ruby liquid (${RUBY[*]}):$ruby"; do
        label=${engine%%:\{*}
        json=${engine#*:}
        python3 -c 'import json,sys; d=json.loads(sys.argv[3]); print("| %s | %s | %s | %s |" % (sys.argv[1], sys.argv[2], format(d["renders_per_second"], ","), d["parse_microseconds"]))' "$name" "$label" "$json"
    done
done
