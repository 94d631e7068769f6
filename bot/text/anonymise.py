"""Take what identifies an owner out of a message before it leaves the database (training data, exports).

Owners write their room, phone tail and name in every way a person types: 501 and ５０１, 五零一 and 五〇一,
"我是王建国", "姓王", "王先生", "my name is Wang Jianguo". :func:`anonymise` keeps the sentence's shape — the
NLU still learns that a room or a name stood there — and removes the value:

* every Arabic or full-width digit becomes 1, every run of Chinese numerals (and a single one before a unit
  word such as 栋, 单元, 号, 室) becomes 一 (so 三栋二单元五零一 → 一栋一单元一一一, while 一直 and 统一 stay);
* an e-mail address becomes ``someone@example.com``;
* a name becomes 某某: after 我是 / 我叫 / 本人 / 名字是 / 业主是 and the like, a surname's title (王先生 →
  某先生, 姓王 → 姓某), a Latin-script name after "my name is" / "I am" / "this is", and every name the caller
  knows (the estate's owners, current and former) wherever it appears, in any script, and its given name alone
  (春花 of 欧阳春花).
"""

from __future__ import annotations

import re
from typing import Iterable

PLACEHOLDER_NAME = "某某"
PLACEHOLDER_EMAIL = "someone@example.com"

_CN_DIGITS = "零〇一二两三四五六七八九幺壹贰叁肆伍陆柒捌玖貳參陸"
_DIGITS = re.compile(r"[0-9０-９]")
_CN_RUN = re.compile(f"[{_CN_DIGITS}]{{2,}}")
_CN_SINGLE_BEFORE_UNIT = re.compile(f"[{_CN_DIGITS}](?=(?:十|百|千)?(?:号楼|单元|栋|幢|座|号|室|层|楼|户|期|区))")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Common surnames (the most frequent cover the great majority of owners); two-character ones first.
_SURNAMES = (
    "欧阳|司马|诸葛|上官|东方|皇甫|尉迟|公孙|慕容|令狐|"
    "王|李|张|刘|陈|杨|黄|赵|吴|周|徐|孙|马|朱|胡|郭|何|高|林|罗|郑|梁|谢|宋|唐|许|韩|冯|邓|曹|彭|曾|肖|萧|田|"
    "董|袁|潘|于|蒋|蔡|余|杜|叶|程|苏|魏|吕|丁|任|沈|姚|卢|姜|崔|钟|谭|陆|汪|范|金|石|廖|贾|夏|韦|付|傅|方|白|"
    "邹|孟|熊|秦|邱|江|尹|薛|闫|阎|段|雷|侯|龙|史|陶|黎|贺|顾|毛|郝|龚|邵|万|钱|严|覃|武|戴|莫|孔|向|汤|常|温|"
    "康|施|文|牛|樊|葛|邢|安|齐|易|乔|伍|庞|颜|倪|庄|聂|章|鲁|岳|翟|殷|詹|申|欧|耿|关|兰|焦|俞|左|柳|甘|祝|包|"
    "宁|尚|符|舒|阮|柯|纪|梅|童|凌|毕|单|季|裴|霍|涂|成|苗|谷|盛|曲|翁|冉|骆|蓝|路|游|辛|靳|管|柴|蒙|鲍|华|喻|"
    "祁|蒲|房|滕|屈|饶|解|牟|艾|尤|阳|时|穆|农|司|卓|古|吉|缪|简|车|项|连|芦|麦|褚|娄|窦|戚|岑|景|党|宫|费|卜|"
    "冷|晏|席|卫|米|柏|宗|瞿|桂|全|佟|应|臧|闵|苟|邬|边|卞|姬|师|和|仇|栾|隋|商|刁|沙|荣|巫|寇|桑|郎|甄|丛|仲|"
    "虞|敖|巩|明|佘|池|查|麻|苑|迟|邝|官|封|谈|匡|鞠|惠|荆|乐|冀|郁|胥|南|班|储|原|栗|燕|楚|鄢|劳|谌|奚|皮|粟|"
    "冼|蔺|楼|盘|满|闻|位|厉|伊|仝|区|郜|海|阚|花|权|强|帅|屠|豆|朴|盖|练|廉|禹|井|祖|漆|巴|丰|支|卿|国|狄|平|"
    "计|索|宣|晋|相|初|门|云|容|敬|来|扈|晁|芮|都|普|阙|浦|戈|伏|鹿|薄|邸|雍|辜|羊|阿|乌|母|裘|亓|修|邰|赫|杭|"
    "况|那|宿|鲜|印|逯|隆|茹|诸|战|慕|危|玉|银|亢|嵇|公|哈|湛|宾|戎|勾|茅|利|於|呼|居|揭|干|但|尉|冶|斯|元|束|"
    "檀|衣|信|展|阴|昝|智|幸|奉|植|衡|富|尧|闭|由"
)
_NAME_BODY = r"[\u4e00-\u9fff]{1,2}"
_SURNAME_PREFIX = re.compile(f"(?:{_SURNAMES})")
# After words that introduce a name, a surname and one or two characters is a name.
_INTRODUCED = re.compile(
    rf"(?P<lead>我是|我叫|本人是|本人|名字是|名字叫|业主是|户主是|业主叫|户主叫|房主是|姓名是|姓名[:：]?|联系人是?)"
    rf"\s*(?P<name>(?:{_SURNAMES}){_NAME_BODY})"
)
_SURNAME_ONLY = re.compile(rf"(?P<lead>(?<!百)姓|免贵姓)\s*(?P<name>{_SURNAMES})")
_TITLED = re.compile(
    rf"(?P<name>(?:{_SURNAMES})[\u4e00-\u9fff]{{0,2}}?)(?P<title>先生|女士|小姐|阿姨|叔叔|大爷|大妈|师傅|老师|太太|老板|经理|主管)"
)
# Latin script: after "my name is" (any case) one to three words; after "I am" only capitalised words.
_LATIN_INTRODUCED = re.compile(
    r"(?P<lead>\b(?i:my name is|name is|call me|my name's)\s+|我是\s*|我叫\s*|本人\s*)"
    r"(?P<name>[A-Za-z]+(?:[\s-][A-Za-z]+){0,2})"
)
_LATIN_CAPITALISED = re.compile(
    r"(?P<lead>\b(?i:i am|i'm|im|this is)\s+)(?P<name>[A-Z][a-z]+(?:[\s-][A-Z][a-z]+){0,2})"
)
_NOT_NAMES = frozenset({"the", "a", "an", "not", "here", "owner", "calling", "from", "in", "at", "busy", "sorry", "fine",
                        "ok", "okay", "going", "paying", "unable", "able", "sure", "yes", "no"})  # fmt: skip
_NOT_NAMES_CN = frozenset({"业主", "房主", "本人", "户主", "租户", "物业", "王者", "高兴", "明白", "明天", "安心", "安排",
                           "万一", "何时", "成功", "方便", "常常", "时候", "文件", "全部", "应该", "和你", "和您", "李子",
                           "关于", "关系", "原来", "于是", "周末", "周一", "周二", "周三", "周四", "周五", "周六", "周日",
                           "林业", "海边", "金额", "许多", "高层", "马上", "向你", "向您", "平时", "同时", "初始", "来电",
                           "来交", "都是", "都交", "单元", "单独", "方面", "成本", "毛病", "段时", "房东", "房子",
                           "房屋", "房间", "租客"})  # fmt: skip


def anonymise(text: str, *, known_names: Iterable[str] = ()) -> str:
    """``text`` without digits, numerals, e-mail addresses or names, its shape kept (see the module).

    Args:
        text: An owner's message.
        known_names: Names to remove wherever they appear (e.g. every owner of the estate); names shorter
            than two characters are ignored (a single character is no name on its own).

    Returns:
        The anonymised text; the same text when nothing identifying is found.
    """
    names = {n.strip() for n in known_names if len(n.strip()) >= 2}
    names |= {given for given in map(_given_name, names) if len(given) >= 2}  # 春花 of 欧阳春花
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(re.escape(name), PLACEHOLDER_NAME, text, flags=re.IGNORECASE)
    text = _EMAIL.sub(PLACEHOLDER_EMAIL, text)
    text = _LATIN_INTRODUCED.sub(_latin_name, text)
    text = _LATIN_CAPITALISED.sub(_latin_name, text)
    text = _INTRODUCED.sub(_introduced_name, text)
    text = _SURNAME_ONLY.sub(lambda found: f"{found['lead']}某", text)
    text = _TITLED.sub(_titled_name, text)
    text = _DIGITS.sub("1", text)
    text = _CN_RUN.sub(lambda found: "一" * len(found.group()), text)
    return _CN_SINGLE_BEFORE_UNIT.sub("一", text)


def _given_name(name: str) -> str:
    """The given name of a Chinese full name (its surname taken off), or "" when it does not start with one."""
    surname = _SURNAME_PREFIX.match(name)
    return name[surname.end():] if surname and len(name) > surname.end() else ""


def _latin_name(found: re.Match) -> str:
    name = found["name"]
    if name.split()[0].lower() in _NOT_NAMES:
        return found.group()
    return f"{found['lead']}{PLACEHOLDER_NAME}"


def _introduced_name(found: re.Match) -> str:
    if found["name"] in _NOT_NAMES_CN or found["name"][:2] in _NOT_NAMES_CN:
        return found.group()
    return f"{found['lead']}{PLACEHOLDER_NAME}"


def _titled_name(found: re.Match) -> str:
    if found["name"] in _NOT_NAMES_CN:
        return found.group()
    return f"某{found['title']}"
