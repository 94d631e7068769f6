"""The guard's reading rules, as data: what each category of forbidden pressure looks like, and what excuses it.

Every pattern is matched against the Mandarin reading of the normalised text (:mod:`bot.compliance.reading`),
so Traditional, Cantonese, full-width, spaced and zero-width-split spellings meet the same rules.

A rule is ``(category, kind, pattern)``; the kind says what the words need before they count:

* ``deprive`` — taking something away (停水, 冻结门禁, 上报征信): counts when the sentence ties it to the
  debt (:data:`PRESSURE`) and no negation governs it in its clause (我们不会…停水 is a reassurance).
* ``withhold`` — refusing what the owner is due until they pay (不给充, 不予受理, 先交费再报修): the refusal
  carries its own negation, so only the debt tie and the sentence's excuses decide.
* ``act`` — a forbidden act whatever the sentence says about the debt (calling an employer, naming an
  owner in the owners' group, knocking at night, a discount): counts unless negated.

Excuses (:data:`UNTIED`, :data:`COURT`, :data:`APPROVAL`) are sentence-wide: 与欠费无关 / 不影响 / 照常,
a court's own act (法院判决后…由法院决定), a discount that awaits the company's approval.
"""

from __future__ import annotations

from typing import Tuple

from bot.compliance.categories import (
    ACCESS,
    CREDIT,
    DISCOUNT,
    HARASSMENT,
    SERVICES,
    SHAMING,
    THIRD_PARTY,
    UTILITIES,
)

DEPRIVE = "deprive"
WITHHOLD = "withhold"
ACT = "act"

# Sentences end here; clauses end at these or at a comma, semicolon or colon.
SENTENCE_END = r"[\u3002\uff01\uff1f!?\n]"
CLAUSE_END = r"[\u3002\uff01\uff1f!?\n\uff0c,\uff1b;\uff1a:\u3001]"

# The sentence ties the consequence to the debt or to paying.
PRESSURE = (
    r"欠|拖|逾期|未缴|未交|未结|未付|未清|没交|没缴|没清|不交|不缴|不结|不付|不还|拒缴|还不|再不|缴清|交清|结清|"
    r"付清|补上|补交|补缴|先交|先缴|先把|先付|交钱|交费|缴费|缴纳|付款|交了|交完|交一下|交这|交的话|交一半|交啦|"
    r"(?:快|尽快|赶紧|马上|早点)[^\u3002]{0,2}(?:交|缴)|"
    r"一次性|物业费|管理费|违约金|滞纳金|费用|欠款|把账|账处理|账结|清账|账清|还钱|给钱|找数"
)

# A negation that governs what follows it in the clause (not 不交 / 不然 / 不想 …: those set a condition).
NEGATION = (
    r"(?:不会|不能|不可能|不再|不得|不用|不必|绝不|决不|从不|从来不|并不|并没有|没有|无权|没权|不可以|无法|没法|没办法|"
    r"不予|不|没|别|未)"
    r"(?![交缴结付还回接覆想然好过行管论仅但少久定满停知止住了信逼]|要逼|好逼)"
)
# Words between a negation and what it governs that show the negation belongs to a condition instead.
CONDITION_BREAK = r"就|便|则|才|的话|否则|不然|要是|如果|若|只要|还是"

# Sentence-wide excuses.
UNTIED = (
    r"无关|没关系|没有关系|不影响|不会影响|照常|照样|两回事|两件事|另外谈|不涉及|不包含|不含|没写|不用等|"
    r"不必等|跟[^\u3002]{0,6}没有关系|不是因为|不关[^\u3002]{0,6}事|两码事|该用照用"
)
# A promise that the approval is a formality makes it a promise again (我帮您申请免掉，肯定能批).
GUARANTEE = r"肯定能批|保证能批|一定能批|包批|肯定批|一定批"
# The owner's own consent or wish to involve someone (only with your authorisation, you asked us to call him).
CONSENT = r"授权|经您同意|您同意|您本人先|请您本人|您说让|您说可以|您希望|如需|如果您希望|您要是想|代交|代缴"
COURT = r"法院|法庭|判决|裁决|司法|强制执行"
# A sentence that denies we can or will take it away, or corrects a rumour that we would (物业公司无权上报征信,
# 这个说法是错误的, 请放心): it excuses the deprivations of utilities, access, services and credit.
DENIAL = (
    r"并非|无权|没有权利|没权利|没有这个权|说法(?:是)?(?:错误|不对|不实|有误)|谣言|标题党|不存在|接不了|接不到|"
    r"请放心|请您放心|您放心|不会因为|不会(?:向|把|将)[^\u3002]{0,12}(?:报送|上报|提供|报给)|误传|不实|并无|"
    r"没有(?:这种|这个|此)?(?:权力|权限)|之权限|无此权|不用担心|不必担心|别担心|用不着担心|两码事"
)
# Planned works and faults: a utility or a gate stopped for them is a notice, not leverage.
MAINTENANCE = (
    r"检修|维修|维护|施工|改造|清洗|更换|升级|保养|故障|跳闸|抢修|计划停|管道|管网|线路|坏了|市政|供电局|"
    r"电力公司|自来水公司|燃气公司"
)
# Public notices that name no one: the spending statement, the collection rate, maintenance notices.
PUBLIC_NOTICE = r"收支|明细|报告|收缴率|整体|账目|财务|停水通知|停电通知|维修通知|检修|公共"
APPROVAL = (
    r"(?<![无不])(?:需|须|要|得|经|等|以)[^\u3002\uff0c,]{0,8}?(?:审批|批准|核准|审核|研究决定|书面答复|批)|"
    r"(?<!不用)(?<!无需)(?<!不必)申请(?!都不用)|是否|能否|能不能|有没有|做不了主|不能做主|没法做主|请示|"
    r"问问?(?:经理|公司|主管|领导)|公司统一|统一活动|已经公示|为准|不能决定|不能答应|不能口头|正式文件|"
    r"(?:要|由|看|等)公司(?:决定|同意|批准)|不是我做主|不由我|打不打折|减不减|免不免|"
    r"做不到|给不了|办不到|(?:不能|没法|无法|没办法)(?:私下)?给|不系我做主|不是我做主|不敢乱说|问下财务|问问财务|"
    r"(?:不能|没得|没法|无法|不可以)(?:私下|私人)?(?:帮你|给你|帮您|给您)?(?:免|减|打折|抹)"
)

_YOUR = r"(?:给|帮|把|对)?(?:您|你|阁下)?(?:们)?(?:家里|家|户)?(?:的|些)?"
_UTILITY = r"(?:热水|暖气|燃气|煤气|天然气|瓦斯|水|电|气|暖)(?![梯话动管费脑视表箱压子器片费单])"
_THEIR = r"(?:你|您|阁下|他|她)(?:们)?(?:的|家)?(?:所在|工作)?"
_PEOPLE = (
    r"(?:单位|公司|领导|老板|人事|雇主|爱人|老婆|太太|丈夫|老公|配偶|父母|爸妈|爸爸|妈妈|家属|家人|家里人|"
    r"亲属|亲戚|直系亲属|紧急联系人|孩子|儿子|女儿|子女|老师|班主任|学校|同事|邻居|承租人|租客|朋友|亲友|第三方|妈|爸|先生|阿妈|阿爸|妈妈|老爸|老妈|家里|亲人|对门|楼上|楼下|上司|经理|人力|房东|担保人|保证人)"
)
_TELL = (
    r"(?:打电话到|打电话给|打到|打去|打给|打个招呼|打过电话|打电话|联系|联络|通知|告诉|告知|转告|函告|说明|找|"
    r"说说|致电|透露|讲|(?:跟|和|同|对)(?:他|她|他们|她们)?说|聊|谈|话给|反映|去|上门)"
)
_NAMES = r"(?:名字|姓名|名单|房号|门牌|欠费单|欠费户|欠费业主|欠费住户|欠费名单|个名)"
_PUBLISH = r"(?:贴|张贴|公布|公示|公开|公告|挂|发到|发在|发去|通报|曝光|滚动|放上|点名|晒|写上|写出|写在)"
_VENUE = r"(?:公告栏|布告栏|告示板|宣传栏|大堂|大厅|电梯|群(?![众体])|朋友圈|抖音|快手|微博|脸书|社团|公众号|横幅|网上)"
_SERVICE = r"(?:报修|维修|修|工单|垃圾|快递|包裹|证明|装修|过户|交接|手续|许可|清运)"


# Night and dawn hours, and the ways of reaching an owner then (harassment).
_NIGHT = (
    r"(?:半夜|深夜|凌晨|夜里|晚上(?:十[一二]|1[12]|2[2-4])点|今晚(?:十[一二]|1[12]|2[2-4])点|"
    r"(?:十[一二]|1[12]|2[2-4])点(?:后|以后)?(?:我|会|再)|十点(?:以后|后)|早上[四五六]点|明早[四五六]点|早[四五六]点|(?:早上|明早|清早)[4-6](?::|点))"
)
_CONTACT = (
    r"(?:打电话|打给|打你|打您|打到|电话|上门|登门|敲门|拍门|敲|拍|找你|找您|来找|过来|来|去你|去您|催|守|等你|等您|"
    r"门口|联系你|联系您|叫醒|吵醒|发消息|发信息|发短信|短信|微信)"
)

RULES: Tuple[Tuple[str, str, str], ...] = (
    # --- utilities (民法典 第九百四十四条) -----------------------------------------------------------------
    (UTILITIES, DEPRIVE, rf"(?<![相有无])(?:停|断|掐|关|限|切)(?:掉|了|止|供)?{_YOUR}{_UTILITY}"),
    (UTILITIES, ACT, rf"(?<![相有无])(?:停|断|掐|关|限|切|截)(?:掉|了)?(?:给|帮|把|对)?(?:您|你|阁下)(?:们)?(?:家里|家|户)?(?:的|些)?{_UTILITY}"),
    (UTILITIES, DEPRIVE, rf"(?:暂停|停止|中断|切断|限制)(?:对)?{_YOUR}(?:供水|供电|供暖|供气|供热|供应|用水|用电|用气)"),
    (UTILITIES, DEPRIVE, r"(?:热水|供水|供电|供暖|供气|供热|暖气)[^\uff0c,\u3002]{0,8}?(?:停供|停止|暂停|中断|减少|调低|关)"),
    (UTILITIES, DEPRIVE, r"(?:水|电|气|暖气|瓦斯|燃气|煤气|阀门|总阀|总闸|电闸)(?![梯话动脑视子费])[^\uff0c,\u3002]{0,8}?(?<![相有无])(?:关掉|关了|关|断了|断掉|断|停了|停掉|拉闸)(?![于系心注联])"),
    (UTILITIES, WITHHOLD, r"(?:电卡|水卡|气卡|燃气卡|电表|水表|购电|充电卡)[^\u3002]{0,12}?(?:不给充|不给增值|不充|无法|没办法|不能|别想|不给|锁定|冻结|停用|限购|暂停|不帮)"),
    (UTILITIES, DEPRIVE, r"没(?:有)?(?:热水|暖气|燃气|水|电|气)(?:用|烧|冲凉|洗澡|喝)?"),
    (UTILITIES, DEPRIVE, r"限电|限水|限气|停供|限购|拉闸|拉电闸|掐电"),
    # --- access and movement ---------------------------------------------------------------------------
    (ACCESS, WITHHOLD, r"(?:门禁|门卡|电梯卡|梯控|人脸识别|人脸|刷脸|车牌识别|出入权限)[^\u3002]{0,12}?(?:刷不开|打不开|停用|停掉|暂停|冻结|删除|注销|失效|关闭|认不出|取消|禁用|锁|不开|不给开|停了|关掉|用不了)"),
    (ACCESS, DEPRIVE, rf"(?:关|停|锁|冻结|注销|删除|停用|禁用)(?:掉|了)?{_YOUR}(?:门禁|门卡|电梯卡|人脸|车位|车)"),
    (ACCESS, WITHHOLD, r"(?:车|车辆)[^\u3002]{0,10}?(?:无法进|不能进|别想进|进不来|进不去|不给进|不让进|禁止|不放)"),
    (ACCESS, WITHHOLD, r"(?:不放|不给|不让|不准|不许|不会放|不会让|不会给)[^\u3002\uff0c,]{0,6}?(?:车|访客|朋友|快递|外卖|人|亲戚)[^\u3002\uff0c,]{0,6}?(?:进|入|上)"),
    (ACCESS, ACT, r"拦(?:在|住)[^\u3002\uff0c,]{0,4}?门|不(?:让|给|准)(?:你|您)?(?:们)?(?:上楼|进门|进小区|上你家|上您家|进来)"),
    (ACCESS, WITHHOLD, r"车位锁|锁(?:上|住)了?(?:你|您)?的?(?:车位|车)"),
    (ACCESS, WITHHOLD, r"访客[^\u3002]{0,8}?(?:暂停|停止|无法|不能|不给|不予|禁止|不让)"),
    (ACCESS, WITHHOLD, r"(?:道闸|栅栏|闸|杆|大门)[^\u3002]{0,8}?(?:不给|不帮|不会|不再|不)(?:你|您)?(?:们)?(?:抬|开)"),
    (ACCESS, WITHHOLD, r"(?:交|缴|结清|付)[^\u3002]{0,8}?(?:再|才|先会|方可|才能)(?:开|恢复|解冻|开通)(?:门禁|门卡|电梯卡|人脸|权限)"),
    (ACCESS, WITHHOLD, r"禁止入场|禁止进入|解冻|(?:不会|不)停(?:你|您)(?:家)?(?:那|的)?层|只能(?:停|刷)到"),
    # --- services withheld as leverage -------------------------------------------------------------------
    (SERVICES, WITHHOLD, rf"{_SERVICE}[^\u3002\uff0c,]{{0,14}}?(?:暂停|不予|无法受理|暂无法|不受理|不办|不给办|不给开|不会开|不开|挂起|不收了|不收|不会帮|不帮|方可|才能|再派|再交给|暂不|不给|先讲|之前不)"),
    (SERVICES, WITHHOLD, rf"(?:暂停|不予|不受理|不给|不帮|不会帮|不会给)[^\u3002\uff0c,]{{0,8}}?{_SERVICE}"),
    (SERVICES, WITHHOLD, rf"{_SERVICE}[^\u3002]{{0,10}}?(?:先|要先|得先|请先)(?:把)?[^\u3002]{{0,8}}?(?:交|缴|补|结清|付)"),
    (SERVICES, WITHHOLD, rf"(?:先|要先|得先|请先)(?:把)?[^\u3002]{{0,10}}?(?:交|缴|补|结清|付)[^\u3002]{{0,10}}?(?:再|才)[^\u3002]{{0,6}}?{_SERVICE}"),
    (SERVICES, WITHHOLD, r"不给(?:你|您)?办|交[^\u3002]{0,8}?先讲"),
    (SERVICES, WITHHOLD, rf"{_SERVICE}[^\u3002]{{0,16}}?(?:后方可|后才能|才能给|方可领取|方可办理|再交给)"),
    (SERVICES, WITHHOLD, r"不交[^\u3002\uff0c,]{0,6}?(?:不会开|不给开|不开|不给办|不办)"),
    # --- credit records and court lists stated as our act or as imminent --------------------------------
    (CREDIT, DEPRIVE, r"征信|失信|黑名单|信用(?!卡|社)|信贷|限高|限制高消费|联征|贷不了|贷款|房贷|银行(?!卡|代扣|转账|app|App|APP)"),
    (CREDIT, ACT, r"(?:列入|拉进|拉入|纳入|上报|报送|上传|提交|弄进|报)[^\u3002\uff0c,]{0,6}?(?:征信|失信|黑名单|信用)"),
    # --- telling third parties (个人信息保护法) -----------------------------------------------------------
    (THIRD_PARTY, ACT, rf"{_TELL}[^\u3002\uff0c,]{{0,4}}?{_THEIR}[^\u3002\uff0c,]{{0,4}}?{_PEOPLE}"),
    (THIRD_PARTY, ACT, rf"{_THEIR}[^\u3002\uff0c,]{{0,6}}?{_PEOPLE}[^\u3002\uff0c,]{{0,10}}?{_TELL}(?!我们|我|物业|本人)"),
    (THIRD_PARTY, ACT, rf"{_PEOPLE}[^\u3002\uff0c,]{{0,6}}?(?:转告|告诉|提醒|催)(?:您|你)"),
    (THIRD_PARTY, ACT, r"(?:通知|告诉|告知|联系|联络|找|打到|打去|函告)(?:工作)?(?:单位|领导|雇主|家属|家人|邻居|父母|亲属|同事|老板)"),
    (THIRD_PARTY, ACT, rf"{_PEOPLE}(?:的)?电话(?:我们|我)(?:已经)?(?:有|问到|拿到|查到|知道)"),
    # --- publishing and shaming (个人信息保护法, 名誉权) -------------------------------------------------
    (SHAMING, ACT, rf"{_NAMES}[^\u3002]{{0,14}}?{_PUBLISH}"),
    (SHAMING, ACT, rf"{_PUBLISH}[^\u3002]{{0,8}}?{_NAMES}"),
    (SHAMING, ACT, r"(?:贴|挂|点名|曝光|放上|晒)[^\u3002\uff0c,]{0,3}?(?:你|您)"),
    (SHAMING, ACT, r"(?:发|拍|放上|挂)[^\u3002]{0,6}?(?:朋友圈|抖音|快手|微博|视频|脸书|网上|社团|群里|业主群)"),
    (SHAMING, ACT, rf"{_VENUE}[^\u3002\uff0c,]{{0,8}}?(?:通报|点名|公布|公示|张贴|曝光|挂出)"),
    (SHAMING, ACT, r"老赖|欠费榜|黑榜|拉横幅|点(?:你|您)(?:的|个)?名|(?:贴|挂|写)[^\u3002\uff0c,]{0,8}?(?:欠了多少|欠费金额|欠多少|欠款)"),
    # --- harassment -------------------------------------------------------------------------------------
    (HARASSMENT, ACT, r"(?:一天|每天|天天|日日(?!头)|每日|每隔[^\u3002\uff0c,]{0,4}|轮流)[^\u3002]{0,12}?(?:打电话|打给|打你|打到|电话|上门|敲门|催|守|等你|等您|门口|过来|来敲)"),
    # A night or dawn hour counts with a contact in the same sentence (半夜施工 is a neighbour's noise, not ours).
    (HARASSMENT, ACT, rf"{_NIGHT}[^\u3002]{{0,12}}?{_CONTACT}|{_CONTACT}[^\u3002]{{0,12}}?{_NIGHT}"),
    (HARASSMENT, ACT, r"(?:门口|楼下|家门|单元门|门前|楼道|大堂|电梯口|车库)[^\u3002\uff0c,]{0,6}?(?:等|守|蹲|堵)|(?:你|您)[^\u3002\uff0c,]{0,6}?(?:值守|蹲守|守候)|堵你|堵您|上门堵"),
    (HARASSMENT, ACT, r"跟着(?:你|您)|跟踪(?:你|您)|跟到哪|(?:你|您)[^\u3002\uff0c,]{0,6}?(?:路线|行踪|几点出门|几点回家|作息)|"
     r"每(?:隔)?[0-9一二两三四五六七八九十半]+(?:分钟|个?小时)|第(?:[3-9]|[1-9][0-9]+|[三四五六七八九十]+)次(?:提醒|催)|高频|(?:敲|打|拍|催|等|守)到(?:你|您)?[^\u3002\uff0c,]{0,3}为止|"
     r"每(?:小时|个小时|半小时|隔|天|日|晚)[^\u3002\uff0c,\uff1b;:\uff1a]{0,6}?(?:打(?![扫算折印开包])|来|上门|催|发|敲|拍)|"
     r"(?:打(?![扫算折印开包])|来|上门|催|敲|拍|电话)[^\u3002\uff0c,\uff1b;:\uff1a]{0,4}?(?:[0-9]+|[三四五六七八九十几]+|好几|无数)(?:次|遍|回|个电话)|拍(?:你|您)?(?:的)?门"),
    # --- discounts and waivers promised without a company decision --------------------------------------
    (DISCOUNT, ACT, r"打[^\u3002\uff0c,]{0,3}折|[0-9一二三四五六七八九]+(?:\.[0-9])?折|折扣|减免|免除|(?<![以避难未])免(?:了|掉|交|收|你|您)|全免|抹掉|抹了|一笔勾销|豁免|便宜(?:点|些|一点)|少收|少算|少交|不收了|减(?:一半|半|掉|免|去|[0-9一二两三四五六七八九十百]+(?:元|块|%|成)?)"),
    (DISCOUNT, ACT, r"(?:欠|钱|费|金)[^\u3002\uff0c,]{0,4}?就算了|送[^\u3002\uff0c,]{0,3}?(?:[一二两三四五六七八九十半0-9]+个?(?:月|年))|优惠|"
     r"(?:违约金|滞纳金|逾期费|利息)[^\u3002\uff0c,]{0,6}?(?:取消|不用交|不用付|不收|免|减|抹|算了|不要了)"),
)

# Composed rules: a thing the owner is due (the topic) and a word that takes it away or holds it back (the
# denial), within :data:`COMPOSE_WINDOW` characters of each other in one sentence, in either order:
# ``(category, kind, topic, denial)``. 电卡…不给充, 维修人员…不能上门, 门卡…不给…用.
COMPOSE_WINDOW = 12
_CUT = r"(?<![相有无])(?:停|断|截|掐|关|拉|限|切)(?![于系心注联键档续])"
_DENY = (
    r"不给|不畀|不让|不准|不许|不会给|不会让|不会放|不放|不能|不可以|无法|没办法|没法|别想|不了|不予|不受理|"
    r"不派|不修|不办|不开|不收|不送|不退|不处理|不提供|不帮|不会帮|暂不|用不|刷不|进不|开不|挂起|排到最后|往后排|最后再|不再代|不管了|延后|自己[^\u3002\uff0c,]{0,2}(?:扔|倒|搬|拿)"
)
_TAKE = r"取消|删除|冻结|停用|禁用|禁止|注销|暂停|停止|减少|调低|限时|限量|锁|收回|作废|失效|降级|关闭"
# Paying set as the condition of a service: 要等物业费结清才能办, 除非你交返, 待缴费后处理, 按缴费情况排.
_UNTIL_PAID = (
    r"(?:等|待|要等|得等)[^\u3002]{0,10}?(?:结清|交清|缴清|付清|补齐|补上|交了|缴了|交费|缴费)[^\u3002\uff0c,]{0,4}?(?:才|再|后|方)|"
    r"除非[^\u3002]{0,8}?(?:交|缴|结清|付|找数|还)|(?:按|照|看)[^\u3002\uff0c,]{0,2}(?:缴费|交费)(?:情况|状况|记录)|"
    r"交了费的[^\u3002\uff0c,]{0,4}(?:优先|先)"
)
# The things each category's composed rules speak of (the topics).
_UTILITY_THINGS = r"热水|暖气|供暖|供热|供水|供电|供气|燃气|煤气|天然气|瓦斯"
_UTILITY_METERS = r"水表|电表|水卡|电卡|气卡|(?<![费漏])(?:水|电|气)(?![梯话动脑视子费单务])"
_ACCESS_THINGS = r"门禁|门卡|电梯卡|梯控|人脸|刷脸|车辆|车位|停车|道闸|访客|出入|进出|放行"
_CAR = r"车(?![费])"
_SERVICE_THINGS = r"报修|维修|修理|(?<!施)工单|垃圾|快递|包裹|证明|装修|过户|交接|手续|派送|押金|漏水|清运"
COMPOSE: Tuple[Tuple[str, str, str, str], ...] = (
    (UTILITIES, DEPRIVE, rf"{_UTILITY_THINGS}|电闸|总闸|总阀|阀门|{_UTILITY_METERS}", f"{_CUT}|{_TAKE}"),
    (UTILITIES, WITHHOLD, rf"{_UTILITY_THINGS}|{_UTILITY_METERS}", _DENY),
    (ACCESS, DEPRIVE, rf"{_ACCESS_THINGS}|{_CAR}", _TAKE),
    (ACCESS, WITHHOLD, rf"{_ACCESS_THINGS}|上楼|进小区|进门|{_CAR}", _DENY),
    (SERVICES, DEPRIVE, _SERVICE_THINGS, r"暂停|停止|取消|挂起|冻结"),
    (SERVICES, WITHHOLD, _SERVICE_THINGS, _DENY),
    (SERVICES, WITHHOLD, _SERVICE_THINGS,
     r"(?:先|得先|要先)[^\u3002]{0,12}?(?:交|缴|结|付|补)[^\u3002\uff0c,]{0,6}?(?:才能|才|再|方可|先)|(?:交|缴|结|付)[^\u3002\uff0c,]{0,6}?(?:再说|先派|先修|先办|先讲)"),
    (SERVICES, WITHHOLD, rf"{_SERVICE_THINGS}|速递|搬家|搬屋|文件|资料|退款|排期|排程|师傅", _UNTIL_PAID),
    (ACCESS, WITHHOLD, rf"{_ACCESS_THINGS}|大闸|闸口|{_CAR}", _UNTIL_PAID),
)

# Categories whose words count only when the sentence ties them to the debt.
NEEDS_PRESSURE: Tuple[str, ...] = (UTILITIES, ACCESS, SERVICES, CREDIT)
