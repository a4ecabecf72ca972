import im.youdu.sdk.client.AppClient;
import im.youdu.sdk.client.AppTokenClient;
import im.youdu.sdk.client.IdentifyClient;
import im.youdu.sdk.client.OrgClient;
import im.youdu.sdk.client.SysMsgClient;
import im.youdu.sdk.entity.Dept;
import im.youdu.sdk.entity.FileInfo;
import im.youdu.sdk.entity.LinkBody;
import im.youdu.sdk.entity.SysMsgBody;
import im.youdu.sdk.entity.UserInfo;
import im.youdu.sdk.entity.YDApp;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Qiao's driver for the vendor's own Java SDK (youduim/youdu-sdk-java, compiled unchanged from its source):
 * calls the SDK's public client classes against a running Qiao and prints one line per call, "OK name
 * detail" or "FAIL name: message". Qiao's test (core/src/openapi/vendor-sdk.test.ts) checks the lines and
 * Qiao's own state afterwards. This file is ours; no SDK code is copied here.
 *
 * args: host buin customAppId customKey sysMsgKey orgKey toUser ssoToken workDir
 */
public class YouduJavaSdkDriver {
    static int failures = 0;

    interface Step { String run() throws Exception; }

    static void step(String name, Step s) {
        try {
            System.out.println("OK " + name + " " + s.run());
        } catch (Throwable e) {
            failures++;
            System.out.println("FAIL " + name + ": " + e);
            Throwable c = e.getCause();
            if (c != null) System.out.println("  cause: " + c);
        }
        System.out.flush();
    }

    public static void main(String[] a) throws Exception {
        final String host = a[0];
        final int buin = Integer.parseInt(a[1]);
        final YDApp custom = new YDApp(buin, host, "OA", a[2], "", a[3]);
        final YDApp sysMsg = new YDApp(buin, host, "sysMsg", "sysMsgAssistant", "", a[4]);
        final YDApp org = new YDApp(buin, host, "org", "sysOrgAssistant", "", a[5]);
        final String toUser = a[6];
        final String ssoToken = a[7];
        final String workDir = a[8];

        final AppClient app = new AppClient(custom);
        final SysMsgClient sys = new SysMsgClient(sysMsg);
        final OrgClient orgClient = new OrgClient(org);

        step("AppTokenClient.getToken", () -> {
            String t = new AppTokenClient(buin, host, custom.getAppId(), custom.getAppAesKey()).getToken();
            return t.isEmpty() ? "empty" : "token";
        });
        step("AppClient.sendTextMsg", () -> { app.sendTextMsg(toUser, "", "Java SDK 文本消息"); return "sent"; });
        step("AppClient.sendLinkMsg", () -> {
            app.sendLinkMsg(toUser, "", new LinkBody("https://oa.example.com/todo/42", "Java SDK 待办", 1));
            return "sent";
        });
        final String[] mediaId = new String[1];
        final byte[] payload = "Java SDK upload — 中文 — 0123456789\n".repeat(50).getBytes(StandardCharsets.UTF_8);
        step("AppClient.uploadFileWithBytes", () -> { mediaId[0] = app.uploadFileWithBytes("sdk-report.txt", payload); return mediaId[0]; });
        step("AppClient.downloadFileAndSave", () -> {
            FileInfo f = app.downloadFileAndSave(mediaId[0], workDir);
            if (!Arrays.equals(f.getData(), payload)) throw new Exception("downloaded bytes differ");
            return f.getName() + " " + f.getData().length;
        });
        step("AppClient.sendFileMsgWithMediaId", () -> { app.sendFileMsgWithMediaId(toUser, "", mediaId[0]); return "sent"; });
        step("SysMsgClient.sendSysMsg", () -> {
            SysMsgBody body = new SysMsgBody("Java SDK 系统消息");
            body.addTextBody("系统维护通知");
            body.addLinkBody("https://it.example.com/notice", "查看详情", 0);
            sys.sendSysMsg(toUser, "", body);
            return "sent";
        });

        step("OrgClient.createDept(id)", () -> {
            Dept d = new Dept(9001, "Java SDK 部门", 0, 1, "javasdk");
            return String.valueOf(orgClient.createDept(d));
        });
        final int[] child = new int[1];
        step("OrgClient.createDept(auto id)", () -> {
            Dept d = new Dept();
            d.setName("Java SDK 子部门");
            d.setParentId(9001);
            child[0] = orgClient.createDept(d);
            return String.valueOf(child[0]);
        });
        step("OrgClient.updateDept", () -> {
            Dept d = new Dept();
            d.setId(child[0]);
            d.setName("Java SDK 子部门(改)");
            orgClient.updateDept(d);
            return "updated";
        });
        step("OrgClient.getDept", () -> { Dept d = orgClient.getDept(child[0]); return d.getId() + " " + d.getName() + " " + d.getParentId(); });
        step("OrgClient.listDeptSelfAndChildren", () -> {
            List<Dept> l = orgClient.listDeptSelfAndChildren(9001);
            StringBuilder b = new StringBuilder();
            for (Dept d : l) b.append(d.getId()).append(',');
            return b.toString();
        });
        step("OrgClient.getDeptIdByAlias", () -> String.valueOf(orgClient.getDeptIdByAlias("javasdk")));
        step("OrgClient.createUser", () -> {
            UserInfo u = new UserInfo();
            u.setUserId("java.sdk");
            u.setName("Java SDK 用户");
            u.setGender(1);
            u.setMobile("13700000042");
            u.setEmail("java.sdk@example.com");
            u.setDept(new int[] { child[0] });
            orgClient.createUser(u);
            return "created";
        });
        step("OrgClient.updateUser", () -> {
            UserInfo u = new UserInfo();
            u.setUserId("java.sdk");
            u.setName("Java SDK 用户(改)");
            u.setDept(new int[] { 9001, child[0] });
            orgClient.updateUser(u);
            return "updated";
        });
        step("OrgClient.getUserInfo", () -> {
            UserInfo u = orgClient.getUserInfo("java.sdk");
            return u.getUserId() + " " + u.getName() + " " + u.getGender() + " " + Arrays.toString(u.getDept()) + " " + u.getEmail();
        });
        step("IdentifyClient.idetify", () -> {
            UserInfo u = new IdentifyClient(host).idetify(ssoToken);
            return u.getUserId() + " " + u.getGid();
        });
        step("OrgClient.deleteUser", () -> { orgClient.deleteUser("java.sdk"); return "deleted"; });
        step("OrgClient.deleteDept", () -> { orgClient.deleteDept(child[0]); return "deleted"; });
        System.out.println("DONE failures=" + failures);
        System.exit(failures == 0 ? 0 : 1);
    }
}
