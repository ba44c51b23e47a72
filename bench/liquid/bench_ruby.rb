# Ruby liquid: parse once, render N times; prints renders/s and parse µs as JSON.
require "liquid"
require "json"

module BrazeFilters
  def number_with_delimiter(value)
    sign = value.to_s.start_with?("-") ? "-" : ""
    digits, fraction = value.to_s.delete_prefix("-").split(".", 2)
    sign + digits.reverse.scan(/\d{1,3}/).join(",").reverse + (fraction ? "." + fraction : "")
  end
end
Liquid::Template.register_filter(BrazeFilters)

template_path, data_path, iterations = ARGV[0], ARGV[1], ARGV[2].to_i
source = File.read(template_path, encoding: "utf-8").gsub(/\{%-?\s*abort_message\([^)]*\)\s*-?%\}/, "ABORT").gsub(/\$\{(\w+)\}/, '\1')
data = JSON.parse(File.read(data_path, encoding: "utf-8"))
user = data.delete("user") || {}
context = data.merge(user.reject { |k, _| k == "custom_attributes" })
context["custom_attribute"] = user["custom_attributes"] || {}
start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
template = nil
200.times { template = Liquid::Template.parse(source) }
parse_us = (Process.clock_gettime(Process::CLOCK_MONOTONIC) - start) / 200 * 1e6
template.render(context)
start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
iterations.times { template.render(context) }
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
puts JSON.generate({ "renders_per_second" => (iterations / elapsed).round, "parse_microseconds" => parse_us.round(1), "iterations" => iterations })
