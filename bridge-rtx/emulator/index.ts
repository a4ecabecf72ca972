// The RTX server emulator: what other packages (the agent, tests, benchmarks) import.
export { DEFAULT_HOST_PORT, DEFAULT_SDK_PORT, startRtxEmulator, type RtxEmulator, type RtxEmulatorOptions } from './emulator.ts';
export { CONTROL_PREFIX, type DownMode } from './control-api.ts';
export { FEED_CONTENT_TYPE, feedHeaders, FilterFeed, type FeedItem, type FeedStatus } from './filter-feed.ts';
export { decodeGbk, encodeGbk, fitsGbk, gbkQueryString, percentEncodeGbk, RTX_CHARSET } from './gbk.ts';
export { HOST_API_PREFIX, PRESENCE_BATCH_MAX } from './host-api.ts';
export { decodeXmlBytes, exportOrgXml, exportOrgXmlString, importOrgXml, ORG_XML_DECLARATION, parseOrgXml, type ParsedOrg } from './org-xml.ts';
export { IP_LIMITED_TEXT, MAX_GROUP_MEMBERS, RtxFault } from './rtx-fault.ts';
export { RtxOrg, splitDeptPath, type RtxDepartment, type RtxUser, type UserInput } from './rtx-org.ts';
export { RtxState, splitNames, type Conversation, type DisGroup, type Inbox, type Presence, type ReceivedIm, type ReceivedNotification } from './rtx-state.ts';
export { formatRtxLink, parseRtxLinks, type RtxTextSegment } from './rtx-text.ts';
export { buildRtxcData, isGuid, MODE_MULTI, MODE_SINGLE, newGuid, newImMessageId, parseRtxcData, type RtxcMessage } from './rtxc-data.ts';
export { loadSdkProperty, parseSdkProperty, type IpLimit } from './sdk-property.ts';
export { SENDIM_SUCCESS_PAGE, SDK_PATHS, SUCCESS_TEXT } from './sdk-routes.ts';
