-- wrk script for the simulator's ceiling: Start calls with unique taskIds.
-- The token comes from the environment (AMT_TOKEN).
local n = 0
local token = os.getenv("AMT_TOKEN")
local threads = 0

function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end

function request()
    n = n + 1
    local task = string.format("%08x-0000-4000-8000-%04x%08x", n, tid or 0, math.random(0, 0x7fffffff))
    local body = '{"action":"Start","taskId":"' .. task .. '","applicationName":"DEMO2",' ..
                 '"amtSubmitUser":"BATCH","amtStation":"OPCON","jobName":"INSTANT","taskValues":[]}'
    return wrk.format("POST", "/api/OpConJobAction",
                      {["Content-Type"] = "application/json", ["X-AMT-LogonToken"] = token}, body)
end
