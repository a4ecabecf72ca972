<#
.SYNOPSIS
  Qiao RTX host: the RTX-host interface the Qiao RTX agent calls on the RTX server.

.DESCRIPTION
  Serves, on http://+:<port>/rtxhost/v1/ (port and token from rtx-host.config.xml):

    GET /rtxhost/v1/health              {ok, interface, rtx: "up"|"down", feed: {...}}
    GET /rtxhost/v1/org.xml             the organisation XML exactly as RTX's USERSYNC object exports it
                                        (GBK bytes under a gb2312 declaration)
    GET /rtxhost/v1/presence?users=a,b  {states: {a: 1, b: 0}, unknown: [...]}  (0 offline, 1 online, 2 away)

  Every call needs "Authorization: Bearer <api token>". The agent talks to the Qiao RTX emulator in exactly
  the same way, so what is tested against the emulator is what runs here.

  RTX's COM objects are 32-bit: run this with C:\Windows\SysWOW64\WindowsPowerShell\v1.0\powershell.exe.
  Windows PowerShell 3.0 or later.

.PARAMETER Config
  Path of rtx-host.config.xml; by default the one next to this script.
#>
[CmdletBinding()]
param(
  [string]$Config = (Join-Path $PSScriptRoot 'rtx-host.config.xml')
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2

if ([IntPtr]::Size -ne 4) {
  Write-Host 'rtx-host-api: run me with the 32-bit PowerShell, C:\Windows\SysWOW64\WindowsPowerShell\v1.0\powershell.exe'
  exit 2
}

# ---- configuration ------------------------------------------------------------------------------------

$readerSettings = New-Object System.Xml.XmlReaderSettings
$readerSettings.DtdProcessing = [System.Xml.DtdProcessing]::Prohibit
$readerSettings.XmlResolver = $null
$reader = [System.Xml.XmlReader]::Create($Config, $readerSettings)
$configDoc = New-Object System.Xml.XmlDocument
try { $configDoc.Load($reader) } finally { $reader.Close() }

function Get-ConfigValue([string]$XPath, [string]$Name, [string]$Default) {
  $node = $configDoc.SelectSingleNode($XPath)
  if ($node -ne $null) {
    $v = $node.GetAttribute($Name).Trim()
    if ($v -ne '') { return $v }
  }
  return $Default
}

$RtxServer = Get-ConfigValue '/rtxhost/rtx' 'server' '127.0.0.1'
$SdkPort = Get-ConfigValue '/rtxhost/rtx' 'sdkPort' ''
$ApiPort = [int](Get-ConfigValue '/rtxhost/api' 'port' '18012')
$ApiToken = Get-ConfigValue '/rtxhost/api' 'token' ''
$SpoolDir = Get-ConfigValue '/rtxhost/spool' 'dir' (Join-Path $PSScriptRoot 'spool')
$LogFile = Get-ConfigValue '/rtxhost/log' 'file' (Join-Path $PSScriptRoot 'rtx-host.log')
if ($ApiToken -eq '' -or $ApiToken.StartsWith('CHANGE-ME')) {
  Write-Host "rtx-host-api: set <api token> in $Config; the interface is never served without one"
  exit 2
}

$Gbk = [System.Text.Encoding]::GetEncoding(936)
$Utf8 = New-Object System.Text.UTF8Encoding($false)
$OrgXmlDeclaration = '<?xml version="1.0" encoding="gb2312" ?>'
$PresenceBatchMax = 1000

function Write-Log([string]$Line) {
  $text = '{0} api {1}' -f [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ'), $Line
  Write-Host $text
  try { [System.IO.File]::AppendAllText($LogFile, $text + "`r`n", [System.Text.Encoding]::Unicode) } catch { }
}

# ---- RTX through its SDK COM objects (what the shipped PHP pages use) ----------------------------------

function Invoke-RtxCall2([string]$ObjectName, [int]$Command, [hashtable]$Properties) {
  $obj = New-Object -ComObject 'RTXServer.RTXObj'
  $props = New-Object -ComObject 'RTXServer.Collection'
  $obj.Name = $ObjectName
  $obj.ServerIP = $RtxServer
  if ($SdkPort -ne '') { $obj.ServerPort = [int]$SdkPort }
  foreach ($key in $Properties.Keys) { [void]$props.Add($key, [string]$Properties[$key]) }
  return $obj.Call2($Command, $props)
}

function Test-RtxUp {
  $svc = Get-Service -Name 'RTX_SvrMain' -ErrorAction SilentlyContinue
  return ($svc -ne $null -and $svc.Status -eq 'Running')
}

# USERSYNC export (command 0x0002, MODIFYMODE 1), handed on as the GBK bytes RTX's own export file has.
function Get-OrgXmlBytes {
  $xml = [string](Invoke-RtxCall2 'USERSYNC' 0x0002 @{ MODIFYMODE = '1'; XMLENCODE = $OrgXmlDeclaration })
  if (-not $xml.TrimStart().StartsWith('<?xml')) { $xml = $OrgXmlDeclaration + $xml }
  return $Gbk.GetBytes($xml)
}

# SYSTOOLS 0x2001, as getstatus.php does: 0 offline, 1 online, 2 away.
function Get-Presence([string]$Name) {
  return [int](Invoke-RtxCall2 'SYSTOOLS' 0x2001 @{ Username = $Name })
}

function Read-FeedStatus {
  $path = Join-Path $SpoolDir 'status.txt'
  if (-not (Test-Path -LiteralPath $path)) { return @{ running = $false } }
  $data = ConvertFrom-StringData ([System.IO.File]::ReadAllText($path, [System.Text.Encoding]::Unicode))
  $updated = [DateTime]::Parse($data['updatedAt']).ToUniversalTime()
  return @{
    running    = (([DateTime]::UtcNow - $updated).TotalSeconds -lt 30)
    registered = ($data['registered'] -eq '1')
    pending    = [int]$data['pending']
    delivered  = [int]$data['delivered']
    lastSeq    = [int]$data['lastSeq']
    lastError  = $(if ($data['lastError']) { $data['lastError'] } else { $null })
    updatedAt  = $data['updatedAt']
  }
}

# ---- HTTP ---------------------------------------------------------------------------------------------

function Send-Bytes($Context, [int]$Status, [string]$ContentType, [byte[]]$Bytes) {
  $res = $Context.Response
  $res.StatusCode = $Status
  $res.ContentType = $ContentType
  $res.ContentLength64 = $Bytes.Length
  if ($Context.Request.HttpMethod -ne 'HEAD') { $res.OutputStream.Write($Bytes, 0, $Bytes.Length) }
  $res.OutputStream.Close()
}

function Send-Json($Context, [int]$Status, $Value) {
  Send-Bytes $Context $Status 'application/json; charset=utf-8' $Utf8.GetBytes((ConvertTo-Json $Value -Depth 5 -Compress))
}

function Send-Error($Context, [int]$Status, [string]$Code, [string]$Message, [string]$Field) {
  $body = @{ code = $Code; message = $Message }
  if ($Field) { $body.field = $Field }
  Send-Json $Context $Status $body
}

# The query is decoded here as UTF-8: HttpListener's own QueryString would use the ANSI code page (936).
function Get-QueryValue($Context, [string]$Name) {
  $raw = $Context.Request.RawUrl
  $q = $raw.IndexOf('?')
  if ($q -lt 0) { return '' }
  foreach ($pair in $raw.Substring($q + 1).Split('&')) {
    $eq = $pair.IndexOf('=')
    if ($eq -gt 0 -and $pair.Substring(0, $eq) -ceq $Name) {
      return [System.Uri]::UnescapeDataString($pair.Substring($eq + 1).Replace('+', ' '))
    }
  }
  return ''
}

function Invoke-Request($Context) {
  $req = $Context.Request
  if ($req.Headers['Authorization'] -cne "Bearer $ApiToken") {
    Send-Error $Context 401 'QIAO_UNAUTHENTICATED' 'the RTX-host interface needs "Authorization: Bearer <token>"' 'authorization'
    return
  }
  if ($req.HttpMethod -ne 'GET' -and $req.HttpMethod -ne 'HEAD') {
    Send-Error $Context 405 'QIAO_BAD_REQUEST' "$($req.HttpMethod) is not supported here; the RTX-host interface is read-only" ''
    return
  }
  $rtxUp = Test-RtxUp
  switch ($req.Url.AbsolutePath) {
    '/rtxhost/v1/health' {
      Send-Json $Context 200 @{ ok = $true; interface = 1; rtx = $(if ($rtxUp) { 'up' } else { 'down' }); feed = (Read-FeedStatus) }
      return
    }
    '/rtxhost/v1/org.xml' {
      if (-not $rtxUp) { Send-Error $Context 503 'QIAO_UNAVAILABLE' 'the RTX server is not running (RTX_SvrMain is stopped)' ''; return }
      Send-Bytes $Context 200 'text/xml; charset=gb2312' (Get-OrgXmlBytes)
      return
    }
    '/rtxhost/v1/presence' {
      if (-not $rtxUp) { Send-Error $Context 503 'QIAO_UNAVAILABLE' 'the RTX server is not running (RTX_SvrMain is stopped)' ''; return }
      $names = @((Get-QueryValue $Context 'users') -split '[,;]' | ForEach-Object { $_.Trim() } | Where-Object { $_ -ne '' } | Select-Object -Unique)
      if ($names.Count -eq 0) { Send-Error $Context 400 'QIAO_VALIDATION' 'users is required: comma-separated RTX account names' 'users'; return }
      if ($names.Count -gt $PresenceBatchMax) { Send-Error $Context 400 'QIAO_VALIDATION' "users lists $($names.Count) names; ask for at most $PresenceBatchMax at a time" 'users'; return }
      $states = @{}
      $unknown = New-Object System.Collections.ArrayList
      foreach ($n in $names) {
        try { $states[$n] = Get-Presence $n } catch { [void]$unknown.Add($n) }
      }
      Send-Json $Context 200 @{ states = $states; unknown = $unknown.ToArray() }
      return
    }
    default {
      Send-Error $Context 404 'QIAO_NOT_FOUND' "no such RTX-host call: $($req.Url.AbsolutePath)" ''
    }
  }
}

# ---- main ---------------------------------------------------------------------------------------------

$listener = New-Object System.Net.HttpListener
$listener.Prefixes.Add("http://+:$ApiPort/rtxhost/v1/")
$listener.Start()
Write-Log "serving the RTX-host interface on port $ApiPort (RTX at $RtxServer)"
try {
  while ($listener.IsListening) {
    $context = $listener.GetContext()
    try {
      Invoke-Request $context
    } catch {
      Write-Log "error answering $($context.Request.RawUrl): $($_.Exception.Message)"
      try { Send-Error $context 500 'QIAO_INTERNAL' $_.Exception.Message '' } catch { }
    }
  }
} finally {
  $listener.Stop()
}
